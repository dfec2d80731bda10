"""A pipeline definition's JSON text, each description shared by several places (a Parallel
of 1,000 copies of one task) encoded once, and the last few definitions' texts kept: a run
writes its definition as it starts and as it ends. The text is ``_jsoncodec.dumps``' own;
anything this module does not write as the encoder would is left to it.
"""

from __future__ import annotations

import threading
from typing import Any

from ._jsoncodec import dumps, encoded
from ._jsontext import quote, scalar_text

__all__ = ["definition_text"]

# The JSON of the last few definitions written. A definition is shared by the runs of its
# pipeline and never modified (``_definition`` makes it), and a run writes it twice (as it
# starts, as it ends): a chain of 5,000 steps has a 1.3 MB definition, 2 us per step to encode
# each time.
# (Final records are written in worker threads: hence the lock.)
_definitions: dict[int, tuple[dict[str, Any], str]] = {}
_definitions_guard = threading.Lock()
_DEFINITIONS_KEPT = 4


def definition_text(definition: dict[str, Any]) -> str:
    """The text ``dumps(definition)`` (a run's ``definition``)."""
    with _definitions_guard:
        found = _definitions.get(id(definition))
    if found is not None and found[0] is definition:
        return found[1]
    try:
        text = _described(definition, {})
    except (_NotPlain, RecursionError):
        text = dumps(definition)  # the encoder's own rules (and its markers)
    with _definitions_guard:
        if len(_definitions) >= _DEFINITIONS_KEPT:
            del _definitions[next(iter(_definitions))]
        _definitions[id(definition)] = definition, text  # held: its id is not reused meanwhile
    return text


class _NotPlain(Exception):
    """A value :func:`_described` does not write as the encoder would (left to it)."""


def _described(value: Any, texts: dict[int, str]) -> str:
    """The text ``dumps(value)`` of a definition, each dict met again (by identity) written
    once: its text kept in ``texts``.

    A definition shares the description of a step or pipeline met in several places (a
    Parallel of 1,000 copies of one task: ``_definition``'s ``_Context``), which the encoder
    writes again at each (33,000 instructions a branch, the dearest part of such a run's
    start). Walked here are only the dicts that may hold such descriptions (a pipeline's,
    with its ``steps``; a composite step's, with its ``branches`` or ``branch``) and the
    lists and dicts of ``branches`` in them; any other dict (a task step's) is the
    encoder's, whole, once: walking every value here would cost twice the encoder's time.
    Raises :class:`_NotPlain` where the text could differ from ``dumps``' (a key that is not
    a str, a value the encoder refuses).
    """
    if type(value) is list:
        for item in value:
            # A composite step (a list holds steps, not pipelines), looked for inline: a
            # call per step of a chain otherwise.
            if type(item) is dict and ("branches" in item or "branch" in item):
                return "[" + ",".join([_described(item, texts) for item in value]) + "]"
        return _plain(value)  # a chain's steps, none composite: the encoder's, whole
    if type(value) is not dict:
        return _plain(value)
    key = id(value)
    text = texts.get(key)
    if text is not None:
        return text
    if _holds(value):
        parts = []
        for name, item in value.items():
            if type(name) is not str:
                raise _NotPlain
            kind = type(item)
            if kind is str:  # the usual value inline: a call per value otherwise
                part = quote(item)
            elif kind is dict and name == "branches":
                part = _branches(item, texts)
            elif kind is dict or kind is list:
                part = _described(item, texts)
            else:
                part = _plain(item)
            parts.append(f"{quote(name)}:{part}")
        text = "{" + ",".join(parts) + "}"
    else:
        try:
            text = encoded(value)
        except (TypeError, ValueError, RecursionError):
            raise _NotPlain from None
    texts[key] = text
    return text


def _holds(described: dict[Any, Any]) -> bool:
    """Whether a description may hold others (a pipeline's, a composite step's)."""
    return "steps" in described or "branches" in described or "branch" in described


def _branches(branches: dict[Any, Any], texts: dict[int, str]) -> str:
    parts = []
    for name, branch in branches.items():
        if type(name) is not str:
            raise _NotPlain
        # A shared branch met again (a branch of 1,000 copies) without a call for it.
        text = texts.get(id(branch))
        if text is None:
            text = _described(branch, texts)
        parts.append(f"{quote(name)}:{text}")
    return "{" + ",".join(parts) + "}"


def _plain(value: object) -> str:
    """The encoder's text of ``value`` (:class:`_NotPlain` where ``dumps`` would rewrite it)."""
    text = scalar_text(value)
    if text is not None:
        return text
    try:
        return encoded(value)
    except (TypeError, ValueError, RecursionError):
        raise _NotPlain from None
