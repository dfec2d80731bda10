"""The journal keeps two minutes' texts: a step started in one minute and ended in the next
(a Map's items around a minute's end) writes both its times from the kept texts, without a
new minute made for each, and every text is still ``isoformat()``'s."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from runnable_trio import _jsontext


def _isoformat(value: dt.datetime) -> str:
    return json.dumps(value.isoformat())


def test_times_alternating_between_two_minutes_keep_both() -> None:
    first = dt.datetime(2026, 3, 1, 12, 30, 59, 900_000, tzinfo=dt.UTC)
    second = first + dt.timedelta(milliseconds=200)  # the next minute
    assert _jsontext.time_text(first) == _isoformat(first)
    assert _jsontext.time_text(second) == _isoformat(second)
    kept = (_jsontext._minute, _jsontext._before)
    assert kept[0][0] == second.replace(second=0, microsecond=0)
    assert kept[1][0] == first.replace(second=0, microsecond=0)
    for step in range(20):
        started = first + dt.timedelta(microseconds=step)
        ended = second + dt.timedelta(microseconds=step * 7)
        period = _jsontext.period(started, ended)
        assert period == f'"started_at":{_isoformat(started)},"ended_at":{_isoformat(ended)}'
        assert _jsontext.time_text(started) == _isoformat(started)
        # Neither minute made again: the same kept texts.
        assert (_jsontext._minute, _jsontext._before) == kept
        assert _jsontext._minute is kept[0]
        assert _jsontext._before is kept[1]


def test_a_third_minute_takes_the_place_of_the_older() -> None:
    base = dt.datetime(2026, 3, 1, 12, 30, tzinfo=dt.UTC)
    times = [base + dt.timedelta(minutes=minutes, seconds=5) for minutes in (0, 1, 2, 1, 0, 2)]
    for value in times:
        assert _jsontext.time_text(value) == _isoformat(value)
    # 0, 1, 2 kept in turn (2 and 1 kept), 1 found, 0 made again (0 and 2 kept), 2 found.
    assert _jsontext._minute[0] == base
    assert _jsontext._before[0] == base + dt.timedelta(minutes=2)
    assert _jsontext._minute[2] == '"2026-03-01T12:30:'


def test_a_step_in_the_older_kept_minute_is_written_in_one_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A time of an earlier minute written meanwhile (a long run's started_at in its final
    # record) takes the newer place; the current minute, kept before it, still serves.
    now = dt.datetime(2026, 3, 1, 12, 30, 10, 250_000, tzinfo=dt.UTC)
    long_ago = now - dt.timedelta(hours=3)
    assert _jsontext.time_text(now) == _isoformat(now)
    assert _jsontext.time_text(long_ago) == _isoformat(long_ago)
    assert _jsontext._before[0] == now.replace(second=0, microsecond=0)
    calls: list[object] = []
    real = _jsontext.time_text

    def counted(value: dt.datetime | None) -> str:
        calls.append(value)
        return real(value)

    monkeypatch.setattr(_jsontext, "time_text", counted)
    for step in range(5):
        started = now + dt.timedelta(milliseconds=step)
        ended = started + dt.timedelta(microseconds=37)
        text = _jsontext.period(started, ended)
        assert text == f'"started_at":{_isoformat(started)},"ended_at":{_isoformat(ended)}'
    assert calls == []
    # Times in neither kept minute, or not UTC, still go through time_text.
    other = now + dt.timedelta(minutes=5)
    naive = now.replace(tzinfo=None)
    assert _jsontext.period(other, other) == (
        f'"started_at":{_isoformat(other)},"ended_at":{_isoformat(other)}'
    )
    assert _jsontext.period(naive, None) == f'"started_at":{_isoformat(naive)},"ended_at":null'
    assert calls == [other, other, naive, None]
