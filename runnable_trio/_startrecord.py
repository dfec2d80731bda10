"""A new run's record as it starts (a file store's journal's first line), from a template.

The runs of one pipeline start with the same record but for their id, start time and
initial parameters: ``run_record``'s text, ~36,000 instructions on the way to every run's
first event, of which these three are ~5,000. So ``run_record`` writes it once per
definition, tag, pipeline name and writer, for a record holding markers where those three
go, and the text is kept in the pieces around them; a run's record is then those pieces with
its own three texts, as ``run_record`` writes them (``quote``, ``time_text``,
``values_text``). The text is ``run_record``'s own: nothing here knows the record's layout
but that it holds each marker where its value goes (a template whose markers are not found
as expected, in a tag holding one say, is not kept: such runs get ``run_record``).
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import attrs

from ._jsontext import quote, time_text, values_text
from ._runlog import RunLog, Status
from ._steplines import run_record

__all__ = ["start_record"]


class _MarkerTime(dt.datetime):
    """The marker's time, of a subclass so that ``time_text`` writes it with ``isoformat()``
    (the same text) and leaves the minutes it keeps alone: kept, this year-1 minute would
    take the place of the current one, and until the next minute every step's times would
    be written by two ``time_text`` calls, not one ``period`` (two calls more per step)."""

    __slots__ = ()


_ID = "\x00run_id\x00"
_TIME = _MarkerTime(1, 1, 1, 0, 0, 0, 1, tzinfo=dt.UTC)
_PARAMETERS = {"\x00parameters_in\x00": None}

#: Templates by definition (its id), definition hash, tag, pipeline name and writer: the
#: definition (held: its id is not reused meanwhile) and the pieces, or None where the
#: markers were not found as expected. (A record may start in any thread: hence the lock.)
_templates: dict[tuple[int, str, str, str, str], tuple[dict[str, Any], tuple[str, ...] | None]] = {}
_guard = threading.Lock()
_KEPT = 16


def start_record(run_log: RunLog, writer: str) -> str:
    """``run_record(run_log, writer)`` of a run that has just started."""
    if not (
        run_log.status is Status.PROCESSING
        and run_log.ended_at is None
        and not run_log.steps
        and not run_log.parameters_out
        and run_log.step is None
        and run_log.error_type is None
        and run_log.error_message is None
        and run_log.code is None
        and not run_log.retried_at
    ):
        return run_record(run_log, writer)  # not as a new run starts: no template
    definition = run_log.definition
    key = (id(definition), run_log.definition_hash, run_log.tag, run_log.pipeline_name, writer)
    found = _templates.get(key)
    if found is None or found[0] is not definition:
        found = (definition, _template(run_log, writer))
        with _guard:
            if len(_templates) >= _KEPT:
                _templates.clear()
            _templates[key] = found
    pieces = found[1]
    if pieces is None:
        return run_record(run_log, writer)
    run_id, started = quote(run_log.run_id), time_text(run_log.started_at)
    parameters = values_text(run_log.parameters_in)
    a, b, c, d, e, f = pieces
    return f"{a}{run_id}{b}{started}{c}{run_id}{d}{started}{e}{parameters}{f}"


def _template(run_log: RunLog, writer: str) -> tuple[str, ...] | None:
    """The pieces of ``run_log``'s record around its id, start time, id, start time and
    parameters, in that order; None if the markers are not found so."""
    marked = attrs.evolve(run_log, run_id=_ID, started_at=_TIME, parameters_in=_PARAMETERS)
    text = run_record(marked, writer)
    run_id, started, parameters = quote(_ID), time_text(_TIME), values_text(_PARAMETERS)
    pieces = []
    for mark in (run_id, started, run_id, started, parameters):
        before, found, text = text.partition(mark)
        if not found:
            return None
        pieces.append(before)
    pieces.append(text)
    if any(mark in piece for piece in pieces for mark in (run_id, started, parameters)):
        return None  # a marker in another place too (the tag, the definition...)
    return tuple(pieces)
