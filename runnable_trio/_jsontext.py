"""JSON text of a record's values, written without the generic encoder: quoted text, times,
plain scalars and mappings of the user's values, each exactly as ``_jsoncodec.dumps`` writes
it (the tests hold them to it). ``_steplines`` builds a run's records from these, and
``_deftext`` a definition's.
"""

from __future__ import annotations

import datetime as dt
import json.encoder
from collections.abc import Callable, Mapping
from typing import Any

from ._jsoncodec import dumps

__all__ = ["period", "quote", "scalar_text", "text_or_null", "time_text", "values_text"]

#: The JSON text of a str, quoted, as the encoder writes it (its C escaper).
quote: Callable[[str], str] = json.encoder.encode_basestring_ascii


def text_or_null(value: str | None) -> str:
    return "null" if value is None else quote(value)


def time_text(value: dt.datetime | None) -> str:
    """The JSON of a time: its ``isoformat()``, quoted.

    A record's times are UTC (``utc_now``), two per attempt, and those of a run mostly share
    their minute: that minute's text is kept (the last one met), and the one before it, and a
    time within either gets only its seconds and fraction written, from tables.
    ``isoformat()`` formats each field through ``sprintf`` (~12,000 instructions a time: the
    dearest part of a step's journal line). The minute before is kept for the steps that
    started in it and end in the next: a Map's items started before a minute's end and
    ended after it would otherwise make each new minute kept in turn, two ``isoformat()``
    each. Any other time (naive, another zone, a subclass) goes through ``isoformat()``.
    """
    if value is None:
        return "null"
    if type(value) is not _DATETIME or value.tzinfo is not _UTC:
        return f'"{value.isoformat()}"'
    global _minute, _before
    # Each read once, whole: a worker thread writing a record may replace them meanwhile
    # (each tuple's text is its own range's, whichever is read).
    start, end, prefix = _minute
    # Compared, not subtracted: a timedelta made per time cost more than the rest.
    if not start <= value < end:
        start, end, prefix = _before
        if not start <= value < end:
            start = value.replace(second=0, microsecond=0)
            if start == _LAST_MINUTE:  # no time after it to end a kept range with
                return f'"{value.isoformat()}"'
            end = start + _A_MINUTE
            prefix = f'"{start.isoformat()[:_MINUTE_DIGITS]}'  # '"YYYY-MM-DDTHH:MM:'
            _before, _minute = _minute, (start, end, prefix)
    micro = value.microsecond
    if micro:
        return f'{prefix}{_TWO[value.second]}{_MICRO[micro // 1000]}{_THREE[micro % 1000]}+00:00"'
    return f'{prefix}{_TWO[value.second]}+00:00"'


def period(started: dt.datetime, ended: dt.datetime | None) -> str:
    """The ``"started_at"`` and ``"ended_at"`` members of an attempt (or a run), as
    :func:`time_text` writes them: in one call where both are UTC times in one kept minute (a
    step's start and end are mostly microseconds apart), their seconds and fractions written
    inline (a call of :func:`time_text` a time otherwise: a step's journal line has two).

    Either kept minute will do: the current one may be the one before (a time of an earlier
    minute written meanwhile, a long run's ``started_at``, takes the newer place, and a time
    found in the older place does not swap them back), and every step until the minute's
    end would otherwise pay two calls.
    """
    if (
        type(started) is not _DATETIME
        or type(ended) is not _DATETIME
        or started.tzinfo is not _UTC
        or ended.tzinfo is not _UTC
    ):
        return _times(started, ended)
    start, end, prefix = _minute
    if not (start <= started < end and start <= ended < end):
        start, end, prefix = _before
        if not (start <= started < end and start <= ended < end):
            return _times(started, ended)
    micro, second = started.microsecond, started.second
    begun = (
        f"{_TWO[second]}{_MICRO[micro // 1000]}{_THREE[micro % 1000]}" if micro else _TWO[second]
    )
    micro, second = ended.microsecond, ended.second
    done = f"{_TWO[second]}{_MICRO[micro // 1000]}{_THREE[micro % 1000]}" if micro else _TWO[second]
    return f'"started_at":{prefix}{begun}+00:00","ended_at":{prefix}{done}+00:00"'


def _times(started: dt.datetime, ended: dt.datetime | None) -> str:
    return f'"started_at":{time_text(started)},"ended_at":{time_text(ended)}'


_DATETIME = dt.datetime
_UTC = dt.UTC
_A_MINUTE = dt.timedelta(minutes=1)
_LAST_MINUTE = dt.datetime.max.replace(second=0, microsecond=0, tzinfo=_UTC)
_MINUTE_DIGITS = len("YYYY-MM-DDTHH:MM:")
#: The minute last written: its start, its end and its text up to the seconds.
_minute = (
    dt.datetime(2000, 1, 1, tzinfo=_UTC),
    dt.datetime(2000, 1, 1, 0, 1, tzinfo=_UTC),
    '"2000-01-01T00:00:',
)
#: The minute kept before it, the same way.
_before = _minute
_TWO = [f"{number:02d}" for number in range(60)]
_THREE = [f"{number:03d}" for number in range(1000)]
#: A fraction's dot and first three digits (its last three are in ``_THREE``).
_MICRO = [f".{number:03d}" for number in range(1000)]


def scalar_text(value: object) -> str | None:
    """The JSON of a plain scalar as the encoder writes it; None for anything else."""
    kind = type(value)
    if kind is str:
        return quote(value)  # type: ignore[arg-type]
    if kind is int:
        try:
            return int.__repr__(value)
        except ValueError:  # past the digit limit: the encoder's marker
            return None
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    if kind is float and value == value and value not in (_INF, -_INF):
        return float.__repr__(value)
    return None


_INF = float("inf")


def values_text(values: Mapping[str, Any]) -> str:
    """A mapping of the user's values; all plain (the usual case) without the encoder."""
    if not values:
        return "{}"
    if len(values) == 1:  # the usual: one value (a chain's ``x``), no list made and joined
        [(name, value)] = values.items()
        if type(name) is str:
            kind = type(value)
            if kind is str:
                return f"{{{quote(name)}:{quote(value)}}}"
            if kind is int and _DIGITS_SAFE_BELOW < value < _DIGITS_SAFE:
                return f"{{{quote(name)}:{value}}}"  # as in the loop below
    parts = []
    for name, value in values.items():
        # The usual values (str, int) inline: a call of scalar_text per value otherwise.
        kind = type(value)
        if kind is str:
            text: str | None = quote(value)
        elif kind is int and _DIGITS_SAFE_BELOW < value < _DIGITS_SAFE:
            text = f"{value}"  # an exact int's text, without int.__repr__ looked up and called
        else:
            text = scalar_text(value)
        if text is None or type(name) is not str:
            return dumps(values)  # the encoder's own rules for everything else
        parts.append(f"{quote(name)}:{text}")
    return "{" + ",".join(parts) + "}"


#: Ints below this in size are written as text whatever ``sys.set_int_max_str_digits`` says
#: (its least is 640 digits).
_DIGITS_SAFE = 10**600
_DIGITS_SAFE_BELOW = -_DIGITS_SAFE
