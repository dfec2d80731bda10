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
import functools
import hashlib
import json
import types
import weakref
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

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
# entry goes with its pipeline: it holds a weak reference to it whose callback removes the
# entry (a ``weakref.finalize`` does the same, but its first use in a process, registering
# with ``atexit``, costs ~120,000 instructions on the way to the first run's first event).
_described: dict[int, tuple[tuple[dict[str, Any], str], weakref.ref[Described]]] = {}


def definition_of(pipeline: Described) -> tuple[dict[str, Any], str]:
    """The definition of ``pipeline`` and its hash (computed once per pipeline object).

    The definition is shared by the runs of the pipeline: it must not be modified.
    """
    key = id(pipeline)
    found = _described.get(key)
    if found is None:
        context = _Context()
        token = _context.set(context)
        try:
            definition = pipeline.describe()
        finally:
            _context.reset(token)
        found = _described[key] = (
            (definition, context.hash(definition)),
            weakref.ref(pipeline, functools.partial(_forget, key)),
        )
    return found[0]


def _forget(key: int, gone: weakref.ref[Described]) -> None:
    # Called as the pipeline goes, before its id can name another object.
    _described.pop(key, None)


def describe_pipeline(pipeline: Any) -> dict[str, Any]:
    """The definition of ``pipeline`` as JSON-compatible data."""
    context = _context.get()
    if context is None:
        return _pipeline_described(pipeline, None)
    # Within a definition, pipelines of the same steps (a Parallel of 1,000 copies of one
    # task's ``as_async_pipeline()``) share one description, as the step does.
    key = (pipeline.name, pipeline.description, *map(id, pipeline.steps))
    found = context.found.get(key)
    if found is not None:
        return context.again(found[1])
    hits = context.hits
    described = _pipeline_described(pipeline, context)
    context.found[key] = (pipeline, described)  # held, as a step is
    return context.holding(described, hits)


def _pipeline_described(pipeline: Any, context: _Context | None) -> dict[str, Any]:
    hits = 0 if context is None else context.hits
    steps = [step.describe() for step in pipeline.steps]
    if context is not None:
        context.holding(steps, hits)
    return {"name": pipeline.name, "description": pipeline.description, "steps": steps}


def hash_definition(definition: Mapping[str, Any]) -> str:
    """The sha256 hex digest of the canonical JSON of a definition."""
    return _sha256(_canonical_json(definition))


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


#: The canonical JSON: keys sorted, no spaces (``json.dumps`` with these arguments, without
#: the encoder it would make on every call).
_canonical_json = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode

#: How that encoder quotes a str (``ensure_ascii``), called without its ``encode``.
_quote = json.encoder.encode_basestring_ascii


class _Context:
    """What one :func:`definition_of` has described so far.

    ``found``: the steps described, by id, and the pipelines, by their name, description and
    steps' ids, each with its description. One step object may appear in many branches (a
    Parallel of 1,000 copies of one task): it is described once, and its description shared
    (the definition is read-only). The step is held until the definition is done: a step
    described through a temporary object (a host's ``describe()``) would otherwise leave its
    id to the next one.

    The hash is then taken without encoding a shared description once per place it appears
    (1,000 times the same JSON for such a Parallel): ``shared`` holds the ids of the
    descriptions given more than once, ``holders`` those of the containers with one inside,
    the only ones the hash walks itself (``hits`` counts the descriptions given again, so a
    container knows whether one was given while it was made).
    """

    __slots__ = ("found", "hits", "holders", "shared")

    def __init__(self) -> None:
        self.found: dict[Any, tuple[Any, dict[str, Any]]] = {}
        self.hits = 0
        self.holders: set[int] = set()
        self.shared: set[int] = set()

    def again(self, described: dict[str, Any]) -> dict[str, Any]:
        """``described``, given once more."""
        self.hits += 1
        self.shared.add(id(described))
        return described

    def holding(self, container: _Container, hits: int) -> _Container:
        """``container``, a holder if a description was given again while it was made."""
        if self.hits != hits:
            self.holders.add(id(container))
        return container

    def hash(self, definition: dict[str, Any]) -> str:
        """:func:`hash_definition` of ``definition``, described in this context."""
        if not self.shared:
            return hash_definition(definition)
        parts: list[str] = []
        self._canonical(definition, {}, parts)
        return _sha256("".join(parts))

    def _canonical(self, value: Any, texts: dict[int, str], parts: list[str]) -> None:
        # The text _canonical_json gives, appended to ``parts``, each shared description
        # encoded once: only the holders are walked here, everything else is encoded whole
        # by json. The pieces are joined once, at the end: a holder joining its own would
        # copy the text of every branch once per level of the definition.
        key = id(value)
        text = texts.get(key)
        if text is None:
            if key not in self.holders:
                text = _canonical_json(value)
            elif key not in self.shared:
                self._holder(value, texts, parts)
                return
            else:  # a shared holder: its text kept whole, for the next place it appears
                own: list[str] = []
                self._holder(value, texts, own)
                text = "".join(own)
            if key in self.shared:
                texts[key] = text
        parts.append(text)

    def _holder(self, value: Any, texts: dict[int, str], parts: list[str]) -> None:
        if isinstance(value, dict):
            separator = "{"
            for name in sorted(value):
                # A description's keys are str: json's own quoting, without its encode call.
                item = value[name]
                text = texts.get(id(item))
                if text is None:
                    parts.append(f"{separator}{_quote(name)}:")
                    self._canonical(item, texts, parts)
                else:  # a shared description met again (a branch of 1,000): no call for it
                    parts.append(f"{separator}{_quote(name)}:{text}")
                separator = ","
            parts.append("}" if value else "{}")
        else:
            separator = "["
            for item in value:
                parts.append(separator)
                self._canonical(item, texts, parts)
                separator = ","
            parts.append("]" if value else "[]")


_Container = TypeVar("_Container", dict[str, Any], list[Any])

#: The context of the :func:`definition_of` under way, if any.
_context: contextvars.ContextVar[_Context | None] = contextvars.ContextVar(
    "_definition_context", default=None
)


def describe_step(step: Any) -> dict[str, Any]:
    """A step's kind and the values of its public attrs fields, described."""
    context = _context.get()
    if context is not None:
        found = context.found.get(id(step))
        if found is not None:
            return context.again(found[1])
    hits = 0 if context is None else context.hits
    described: dict[str, Any] = {"kind": getattr(step, "kind", type(step).__name__)}
    for field in attrs.fields(type(step)):
        if field.init and not field.name.startswith("_"):
            described[field.name] = _describe_value(getattr(step, field.name), context)
    if context is not None:
        context.found[id(step)] = (step, described)  # held: its id stays its own meanwhile
        context.holding(described, hits)
    return described


# Tuples, not ``str | bool | ...``: a union in the call is made again on every call, and a
# definition describes every field of every step.
_SCALARS = (str, bool, int, float)
_SEQUENCES = (list, tuple)
_MAPPINGS = (dict, Mapping)
#: The types of plain functions and methods: none is anything but callable (no subclass).
_FUNCTIONS = frozenset((types.FunctionType, types.BuiltinFunctionType, types.MethodType))


def _describe_value(value: Any, context: _Context | None) -> Any:
    if value is None or isinstance(value, _SCALARS):
        return value
    if type(value) in _FUNCTIONS:
        # Before the Mapping check: an ABC's first check of a type walks its registry
        # (~50,000 instructions on the way to the first run's first event).
        return _callable_name(value)
    hits = 0 if context is None else context.hits
    described: Any
    if isinstance(value, _SEQUENCES):
        described = [_describe_value(item, context) for item in value]
    elif isinstance(value, Described):  # a pipeline (a branch, on_failure) or a step
        return value.describe()
    elif isinstance(value, _MAPPINGS):
        # A pipeline (a branch of 1,000) described at once, not through a call of this
        # function: the branches of a Parallel are most of a wide definition.
        described = {
            str(key): item.describe()
            if isinstance(item, Described)
            else _describe_value(item, context)
            for key, item in value.items()
        }
    elif attrs.has(type(value)):
        described = {
            field.name: _describe_value(getattr(value, field.name), context)
            for field in attrs.fields(type(value))
            if not field.name.startswith("_")
        }
    elif callable(value):
        return _callable_name(value)
    else:
        return repr(value)
    if context is not None:
        context.holding(described, hits)
    return described


def _callable_name(function: Callable[..., Any]) -> str:
    target = getattr(function, "func", function)  # functools.partial: name the function
    module = getattr(target, "__module__", None) or "?"
    name = getattr(target, "__qualname__", None) or type(target).__qualname__
    return f"{module}.{name}"
