"""The journal's time text around the kept minute's edges: as ``isoformat()`` writes it."""

from __future__ import annotations

import datetime as dt

from runnable_trio import _jsontext


def test_times_around_the_kept_minute_are_written_as_isoformat() -> None:
    base = dt.datetime(2026, 3, 1, 12, 30, tzinfo=dt.UTC)
    times = [
        base,
        base + dt.timedelta(seconds=59, microseconds=999_999),  # the minute's last
        base + dt.timedelta(minutes=1),  # the next one's first: a new minute kept
        base + dt.timedelta(seconds=30, microseconds=5),  # back in the earlier minute
        base - dt.timedelta(microseconds=1),  # just before it
        base + dt.timedelta(days=400, seconds=7, microseconds=120_000),
        base.replace(tzinfo=None),  # naive: through isoformat()
    ]
    for value in times:
        assert _jsontext.time_text(value) == f'"{value.isoformat()}"'
