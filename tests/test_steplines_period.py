"""An attempt's two times written in one call, a single value written without the loop, and
a leaf step's state looked up: each the text (or int) the general path gives."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runnable_trio import _jsontext as jsontext
from runnable_trio import _steplines as steplines
from runnable_trio._jsoncodec import dumps
from runnable_trio._runlog import RunLog, Status, StepLog

_UTC_TIMES = st.datetimes(
    min_value=dt.datetime(1, 1, 1),
    max_value=dt.datetime(9999, 12, 31, 23, 59),
    timezones=st.just(dt.UTC),
)
_TIMES = st.one_of(
    _UTC_TIMES,
    _UTC_TIMES.map(lambda t: t.replace(microsecond=0)),
    _UTC_TIMES.map(lambda t: t.replace(year=t.year % 1000 or 1)),  # year < 1000
    st.datetimes(),  # naive
    st.datetimes(timezones=st.sampled_from([dt.timezone(dt.timedelta(hours=-5)), dt.UTC])),
)


def _pair(started: dt.datetime, ended: dt.datetime | None) -> str:
    return f'"started_at":{json.dumps(started.isoformat())},"ended_at":' + (
        "null" if ended is None else json.dumps(ended.isoformat())
    )


@given(st.lists(st.tuples(_TIMES, st.one_of(st.none(), _TIMES)), max_size=8))
def test_an_attempts_times_are_written_as_their_isoformat(
    pairs: list[tuple[dt.datetime, dt.datetime | None]],
) -> None:
    # One after another, as a run writes them: the minute kept from the time before is used
    # only for times within it.
    for started, ended in pairs:
        assert jsontext.period(started, ended) == _pair(started, ended)


@given(_UTC_TIMES, st.integers(0, 120_000_000))
def test_times_in_the_kept_minute_and_past_it_are_written_as_their_isoformat(
    started: dt.datetime, micros: int
) -> None:
    # The second time close to the first: in its minute (the inline path) or just past it.
    jsontext.time_text(started)  # its minute kept
    try:
        ended = started + dt.timedelta(microseconds=micros)
    except OverflowError:
        return
    assert jsontext.period(started, ended) == _pair(started, ended)
    assert jsontext.period(ended, started) == _pair(ended, started)


def test_the_edges_of_the_kept_minute() -> None:
    base = dt.datetime(2026, 3, 1, 12, 30, tzinfo=dt.UTC)
    jsontext.time_text(base)
    last = base + dt.timedelta(seconds=59, microseconds=999_999)
    for started, ended in [
        (base, base),
        (base, last),
        (last, last + dt.timedelta(microseconds=1)),  # the next minute's first
        (base - dt.timedelta(microseconds=1), base),
        (base.replace(microsecond=5), base.replace(second=7, microsecond=120_000)),
        (base, None),
    ]:
        jsontext.time_text(base)  # that minute kept again
        assert jsontext.period(started, ended) == _pair(started, ended)


_VALUES = st.one_of(
    st.text(),
    st.integers(),
    st.integers(min_value=10**599, max_value=10**601),
    st.integers(min_value=-(10**601), max_value=-(10**599)),
    st.just(10**5000),  # past the digit limit: the encoder's marker
    st.floats(),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=2),
)


@given(st.one_of(st.text(), st.integers(), st.none()), _VALUES)
def test_a_single_value_is_written_as_the_encoder_writes_it(name: object, value: object) -> None:
    values = {name: value}
    assert jsontext.values_text(values) == dumps(values)  # type: ignore[arg-type]


@given(st.dictionaries(st.text(), _VALUES, min_size=2, max_size=4))
def test_several_values_are_written_as_the_encoder_writes_them(values: dict[str, object]) -> None:
    assert jsontext.values_text(values) == dumps(values)


@pytest.mark.parametrize("status", list(Status))
def test_a_leaf_steps_state_is_looked_up_as_computed(status: Status) -> None:
    step = StepLog("a", "task", "a", status=status)
    step.new_attempt()
    assert steplines._LEAF_STATES[status] == steplines._state(step)


def test_a_leaf_steps_kept_text_is_served_without_computing_its_state(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The final record asks for every step's kept text: a leaf's state is looked up there
    # as in its journal line, no call of _state per step.
    texts = steplines.StepTexts()
    step = StepLog("a", "task", "a", status=Status.SUCCESS)
    step.new_attempt().end(Status.SUCCESS)
    [line] = steplines.journal_lines(RunLog("r"), step, set(), texts)
    calls: list[StepLog] = []
    state = steplines._state

    def counted(record: StepLog) -> int | None:
        calls.append(record)
        return state(record)

    monkeypatch.setattr(steplines, "_state", counted)
    assert line == f'{{"step":{texts.get(step)}}}'
    assert calls == []
    step.new_attempt()  # no longer a leaf: its state computed, and the text not served
    assert texts.get(step) is None
    assert calls == [step]
