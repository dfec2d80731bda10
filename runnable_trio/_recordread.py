"""Run and step records built from their decoded JSON, for the stores that read them back.

Reading a big run back (a Map of 100,000 items is 100,000 step records) through cattrs costs
about as much as running it. :func:`read_step` and :func:`read_run` build the records from the
decoded JSON directly: one table per record class says how each field's value is converted
(the same conversions the library's converter applies: ``str``, ``int``, ``Status``, ISO
times, its boolean rule), a key the class does not have is refused as the converter refuses
it, and a missing one takes the field's default. There is one schema: the tests hold the text
to what the generic writer writes and the records to what the generic reader builds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from ._convert import converter
from ._runlog import (
    Attempt,
    BranchLog,
    CatalogEntry,
    CodeIdentity,
    RunLog,
    Status,
    StepLog,
    upgrade_run_data,
)

__all__ = ["read_run", "read_step"]

_Fields = dict[str, Callable[[Any], Any]]


def _build(cls: Callable[..., Any], fields: _Fields, data: Any) -> Any:
    """``cls`` from the decoded object ``data``, whose values are converted in place."""
    if type(data) is not dict:
        raise TypeError(f"a {cls.__name__} is an object, not {type(data).__name__}")
    for key, value in data.items():
        convert = fields.get(key)
        if convert is None:
            raise ValueError(f"a {cls.__name__} has no field {key!r}")
        data[key] = convert(value)
    return cls(**data)


def _optional(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else convert(value)


def _values_read(value: Any) -> dict[str, Any]:
    if type(value) is not dict:
        raise TypeError(f"parameters are an object, not {type(value).__name__}")
    return value


def _bool(value: Any) -> bool:
    return converter.structure(value, bool)  # its rule for "false" and the like


_read_time = dt.datetime.fromisoformat
# A dict lookup, not the enum's call (in Python): three per step. A KeyError for another value.
_read_status: Callable[[Any], Status] = {status.value: status for status in Status}.__getitem__
_ATTEMPT: _Fields = {
    "number": int,
    "started_at": _read_time,
    "ended_at": _optional(_read_time),
    "status": _read_status,
    "error_type": _optional(str),
    "error_message": _optional(str),
    "parameters_in": _values_read,
    "parameters_out": _values_read,
    "metrics": _values_read,
}
_ENTRY: _Fields = {"name": str, "sha256": str, "stage": str, "parameter": _optional(str)}
_CODE: _Fields = {"commit": _optional(str), "dirty": _optional(_bool), "error": _optional(str)}


def _list(convert: Callable[[Any], Any]) -> Callable[[Any], list[Any]]:
    def read(value: Any) -> list[Any]:
        if type(value) is not list:
            raise TypeError(f"expected a list, not {type(value).__name__}")
        return [convert(item) for item in value]

    return read


def _mapping(convert: Callable[[Any], Any]) -> Callable[[Any], dict[str, Any]]:
    def read(value: Any) -> dict[str, Any]:
        if type(value) is not dict:
            raise TypeError(f"expected an object, not {type(value).__name__}")
        return {key: convert(item) for key, item in value.items()}

    return read


def read_step(data: Any) -> StepLog:
    """The step record from its decoded JSON (which it consumes: its dicts are reused).

    Raises:
        TypeError, ValueError, KeyError: the data is not a step record.
    """
    step: StepLog = _build(StepLog, _STEP, data)
    return step


def _read_branch(data: Any) -> BranchLog:
    branch: BranchLog = _build(BranchLog, _BRANCH, data)
    return branch


_STEP: _Fields = {
    "name": str,
    "kind": str,
    "path": str,
    "status": _read_status,
    "attempts": _list(lambda value: _build(Attempt, _ATTEMPT, value)),
    "branches": _mapping(_read_branch),
    "catalog": _list(lambda value: _build(CatalogEntry, _ENTRY, value)),
    "assigned": _values_read,
}
_BRANCH: _Fields = {"name": str, "status": _read_status, "steps": _mapping(read_step)}
_RUN: _Fields = {
    "run_id": str,
    "tag": str,
    "pipeline_name": str,
    "status": _read_status,
    "started_at": _read_time,
    "ended_at": _optional(_read_time),
    "parameters_in": _values_read,
    "parameters_out": _values_read,
    "steps": _mapping(read_step),
    "step": _optional(str),
    "error_type": _optional(str),
    "error_message": _optional(str),
    "definition": _values_read,
    "definition_hash": str,
    "code": _optional(lambda value: _build(CodeIdentity, _CODE, value)),
    "retried_at": _list(_read_time),
}


def read_run(data: Any) -> RunLog:
    """The run record from its decoded JSON (consumed as :func:`read_step` does).

    Raises:
        TypeError, ValueError, KeyError: the data is not a run record.
    """
    run_log: RunLog = _build(RunLog, _RUN, upgrade_run_data(data))
    return run_log
