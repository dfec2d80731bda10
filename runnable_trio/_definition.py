"""A pipeline's definition as plain data, and its hash, for the run log.

Steps are attrs classes, so the description is generic: every public ``init`` field of a step
is described (pipelines and dicts of pipelines recursively, callables by their qualified
name, attrs values such as ``Catalog``, ``Retry`` or ``TaskReturns`` by their fields, other
values by ``repr``), with the step's ``kind``. Composite steps need nothing of their own.

The hash is the sha256 of the canonical JSON (sorted keys) of that description. It names
functions, not their code: fixing a function's body keeps the hash, so a failed run can be
retried with the fix, while adding, removing or renaming a step changes it.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import weakref
from collections.abc import Callable, Mapping
from typing import Any

import attrs

__all__ = ["Described", "definition_of", "describe_pipeline", "describe_step", "hash_definition"]


class Described:
    """A part of a pipeline's definition (a step, a pipeline): it describes itself.

    The base of ``BaseStep`` and ``AsyncPipeline``; this module knows only this class, so the
    graph imports it and not the reverse.
    """

    __slots__ = ()

    def describe(self) -> dict[str, Any]:
        """The definition as JSON-compatible data."""
        raise NotImplementedError


# Pipelines are immutable, so a pipeline run many times (a server's) is described once; an
# entry goes with its pipeline.
_described: dict[int, tuple[dict[str, Any], str]] = {}


def definition_of(pipeline: Described) -> tuple[dict[str, Any], str]:
    """The definition of ``pipeline`` and its hash (computed once per pipeline object).

    The definition is shared by the runs of the pipeline: it must not be modified.
    """
    key = id(pipeline)
    found = _described.get(key)
    if found is None:
        token = _steps_described.set({})
        try:
            definition = pipeline.describe()
        finally:
            _steps_described.reset(token)
        found = _described[key] = (definition, hash_definition(definition))
        weakref.finalize(pipeline, _described.pop, key, None)
    return found


def describe_pipeline(pipeline: Any) -> dict[str, Any]:
    """The definition of ``pipeline`` as JSON-compatible data."""
    return {
        "name": pipeline.name,
        "description": pipeline.description,
        "steps": [step.describe() for step in pipeline.steps],
    }


def hash_definition(definition: Mapping[str, Any]) -> str:
    """The sha256 hex digest of the canonical JSON of a definition."""
    text = json.dumps(definition, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


#: While :func:`definition_of` describes a pipeline: the steps described so far, by id, each
#: with its description. One step object may appear in many branches (a Parallel of 1,000
#: copies of one task): it is described once, and its description shared (the definition is
#: read-only). The step is held until the definition is done: a step described through a
#: temporary object (a host's ``describe()``) would otherwise leave its id to the next one.
_steps_described: contextvars.ContextVar[dict[int, tuple[Any, dict[str, Any]]] | None] = (
    contextvars.ContextVar("_steps_described", default=None)
)


def describe_step(step: Any) -> dict[str, Any]:
    """A step's kind and the values of its public attrs fields, described."""
    seen = _steps_described.get()
    if seen is not None:
        found = seen.get(id(step))
        if found is not None:
            return found[1]
    described: dict[str, Any] = {"kind": getattr(step, "kind", type(step).__name__)}
    for field in attrs.fields(type(step)):
        if field.init and not field.name.startswith("_"):
            described[field.name] = _describe_value(getattr(step, field.name))
    if seen is not None:
        seen[id(step)] = (step, described)  # held: its id stays its own meanwhile
    return described


def _describe_value(value: Any) -> Any:
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, list | tuple):
        return [_describe_value(item) for item in value]
    if isinstance(value, Described):  # a pipeline (a branch, on_failure) or a step
        return value.describe()
    if isinstance(value, dict | Mapping):
        return {str(key): _describe_value(item) for key, item in value.items()}
    if attrs.has(type(value)):
        return {
            field.name: _describe_value(getattr(value, field.name))
            for field in attrs.fields(type(value))
            if not field.name.startswith("_")
        }
    if callable(value):
        return _callable_name(value)
    return repr(value)


def _callable_name(function: Callable[..., Any]) -> str:
    target = getattr(function, "func", function)  # functools.partial: name the function
    module = getattr(target, "__module__", None) or "?"
    name = getattr(target, "__qualname__", None) or type(target).__qualname__
    return f"{module}.{name}"
