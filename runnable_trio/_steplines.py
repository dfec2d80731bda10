"""The file store's journal line for a step, written without the generic converter.

A chain writes one journal line per step, so the line's cost is the store's per-step cost.
:func:`step_line` writes the JSON text of ``{"step": step_log_to_dict(step)}`` directly:
the record's own fields (names, statuses, times) go through the C string escaper, only the
user's values (parameters, metrics, assigned) through ``_jsoncodec.dumps``, so no
intermediate dicts are built and the generic converter is not walked. There is one schema:
the journal is read back with the generic ``step_log_from_dict``, and the tests hold the
text to what the generic path writes.
"""

from __future__ import annotations

import datetime as dt
import json.encoder
from collections.abc import Callable, Mapping
from typing import Any

from ._jsoncodec import dumps
from ._runlog import Attempt, BranchLog, CatalogEntry, StepLog

__all__ = ["step_line"]

_quote: Callable[[str], str] = json.encoder.encode_basestring_ascii


def _text(value: str | None) -> str:
    return "null" if value is None else _quote(value)


def _time(value: dt.datetime | None) -> str:
    return "null" if value is None else f'"{value.isoformat()}"'


def _value(value: object) -> str | None:
    """The JSON of a plain scalar as the encoder writes it; None for anything else."""
    kind = type(value)
    if kind is str:
        return _quote(value)  # type: ignore[arg-type]
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


def _values(values: Mapping[str, Any]) -> str:
    """A mapping of the user's values; all plain (the usual case) without the encoder."""
    if not values:
        return "{}"
    parts = []
    for name, value in values.items():
        text = _value(value)
        if text is None or type(name) is not str:
            return dumps(values)  # the encoder's own rules for everything else
        parts.append(f"{_quote(name)}:{text}")
    return "{" + ",".join(parts) + "}"


def _attempt(attempt: Attempt) -> str:
    return (
        f'{{"number":{int(attempt.number)},"started_at":{_time(attempt.started_at)},'
        f'"ended_at":{_time(attempt.ended_at)},"status":{_quote(attempt.status)},'
        f'"error_type":{_text(attempt.error_type)},'
        f'"error_message":{_text(attempt.error_message)},'
        f'"parameters_in":{_values(attempt.parameters_in)},'
        f'"parameters_out":{_values(attempt.parameters_out)},'
        f'"metrics":{_values(attempt.metrics)}}}'
    )


def _entry(entry: CatalogEntry) -> str:
    return (
        f'{{"name":{_quote(entry.name)},"sha256":{_quote(entry.sha256)},'
        f'"stage":{_quote(entry.stage)},"parameter":{_text(entry.parameter)}}}'
    )


def _branch(branch: BranchLog) -> str:
    steps = ",".join(f"{_quote(name)}:{_step(step)}" for name, step in branch.steps.items())
    return f'{{"name":{_quote(branch.name)},"status":{_quote(branch.status)},"steps":{{{steps}}}}}'


def _step(step: StepLog) -> str:
    attempts = ",".join(map(_attempt, step.attempts))
    branches = ",".join(f"{_quote(name)}:{_branch(b)}" for name, b in step.branches.items())
    catalog = ",".join(map(_entry, step.catalog))
    return (
        f'{{"name":{_quote(step.name)},"kind":{_quote(step.kind)},"path":{_quote(step.path)},'
        f'"status":{_quote(step.status)},"attempts":[{attempts}],"branches":{{{branches}}},'
        f'"catalog":[{catalog}],"assigned":{_values(step.assigned)}}}'
    )


def step_line(step: StepLog, key: str = "step") -> str:
    """The journal line ``{key: step}``: the text ``dumps({key: step_log_to_dict(step)})``."""
    return f"{{{_quote(key)}:{_step(step)}}}"
