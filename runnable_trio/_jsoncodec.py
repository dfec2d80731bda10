"""JSON for records whose parameter values may be anything.

Run logs and event logs hold user values (parameters, events). attrs instances and
dataclasses are written as dicts of their fields, dates and times in ISO 8601. Any other value
JSON cannot hold must not crash the record, so it is written as
``{"$repr": "<repr of the value>"}`` (cut to :data:`REPR_LIMIT` characters). Other lossy
cases follow JSON's own rules: tuples become lists, non-str keys become str (``repr`` of the
key where JSON has no rule), a cycle becomes a ``$repr`` marker, and so does an int too
long for Python to write as text (past ``sys.get_int_max_str_digits()``); a key that has no
text at all (such an int, a broken ``__repr__``) becomes ``"$repr <index in its dict>: ..."``,
so distinct keys never merge and the marker is seen. A record read back
holds the marker dict, not the value: a retried run therefore runs again a step whose outputs
were written this way (see ``_rerun``).

The fast path is the C encoder with a ``default`` hook; the slow path (a tree rewrite) is
taken only when the encoder refuses the data (odd keys, cycles).

Encoding what this module decoded gives the same text again (``dumps(loads(dumps(x))) ==
dumps(x)``): that is what makes an SSE message sent live and the same event replayed from the
event log byte-identical (``_sse`` encodes both with :func:`dumps`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["REPR_KEY", "REPR_LIMIT", "dumps", "encoded", "has_repr_marker", "loads"]

REPR_KEY = "$repr"
REPR_LIMIT = 1000
_PLAIN = (str, int, float, bool, type(None))


def _default(value: object) -> Any:
    attributes = getattr(type(value), "__attrs_attrs__", None)  # an attrs class
    if attributes is not None:
        return {field.name: getattr(value, field.name) for field in attributes}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: getattr(value, field.name) for field in dataclasses.fields(value)}
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return _marker(value)


def _marker(value: object) -> dict[str, str]:
    return {REPR_KEY: _repr(value)}


def _repr(value: object) -> str:
    """``repr(value)``, cut to :data:`REPR_LIMIT`; a broken ``__repr__`` named, not raised."""
    try:
        text = repr(value)
    except Exception as exc:  # a broken __repr__ must not break the record either
        text = f"<{type(value).__qualname__} (repr failed: {type(exc).__name__})>"
    if len(text) > REPR_LIMIT:
        text = text[:REPR_LIMIT] + "..."
    return text


_encoder = json.JSONEncoder(separators=(",", ":"), default=_default)
_text_encoder = json.JSONEncoder(separators=(",", ":"), default=_default, ensure_ascii=False)


def dumps(data: Any, *, ascii: bool = True) -> str:
    """``data`` as compact JSON text, with ``$repr`` markers for what JSON cannot hold.

    Args:
        data: the value.
        ascii: escape every non-ASCII character (``\\u00e9``); ``False`` keeps them as
            they are (for text sent to a client, e.g. SSE).
    """
    encoder = _encoder if ascii else _text_encoder
    try:
        return encoder.encode(data)
    except (TypeError, ValueError, RecursionError):
        return encoder.encode(_jsonable(data, set()))


def encoded(data: Any) -> str:
    """The encoder's own text of ``data`` (what :func:`dumps` writes where it does not
    rewrite the data).

    Raises:
        TypeError, ValueError, RecursionError: the encoder refuses the data (odd keys, a
            cycle): :func:`dumps` rewrites it.
    """
    if _one_shot is None:
        return _encoder.encode(data)
    return "".join(_one_shot(data, 0))


#: The C encoder ``_encoder.encode`` makes on each call, made once (no cycle check: a cycle
#: is a RecursionError instead of a ValueError).
_make_encoder: Any = getattr(json.encoder, "c_make_encoder", None)
_one_shot: Callable[[Any, int], Iterable[str]] | None = (
    None
    if _make_encoder is None
    else _make_encoder(
        None, _default, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, True
    )
)


def loads(text: str | bytes) -> Any:
    return json.loads(text)


def _jsonable(value: Any, active: set[int]) -> Any:
    if type(value) is int and not _writable(value):
        return {REPR_KEY: _HUGE_INT}
    if isinstance(value, _PLAIN):
        return value
    if not isinstance(value, dict | list | tuple):
        value = _default(value)
        if not isinstance(value, dict) or REPR_KEY in value:
            return value
    if isinstance(value, dict | list | tuple):
        if id(value) in active:
            return {REPR_KEY: f"<cycle: {type(value).__name__}>"}
        active.add(id(value))
        try:
            if isinstance(value, dict):
                return {
                    _key(k, index): _jsonable(v, active)
                    for index, (k, v) in enumerate(value.items())
                }
            return [_jsonable(v, active) for v in value]
        finally:
            active.discard(id(value))
    return value


_HUGE_INT = "<int too large to write>"


def _writable(value: int) -> bool:
    """Whether Python writes the int as text (not past ``sys.get_int_max_str_digits()``)."""
    try:
        int.__repr__(value)
    except ValueError:
        return False
    return True


def _key(key: object, index: int) -> str:
    """A dict key as text: JSON's rule for scalars, else its ``repr``; a key that has no
    text (an int past the digit limit, a broken ``__repr__``) is a marker naming its place
    in the dict, so two of them never merge and :func:`has_repr_marker` sees them."""
    if isinstance(key, str):
        return key
    if isinstance(key, int) and not isinstance(key, bool) and not _writable(key):
        return f"{REPR_KEY} {index}: {_HUGE_INT}"
    if isinstance(key, bool | int | float) or key is None:
        return json.dumps(key)
    try:
        return repr(key)
    except Exception:
        return f"{REPR_KEY} {index}: {_repr(key)}"


def has_repr_marker(value: Any) -> bool:
    """Whether a value read back from JSON holds a ``$repr`` marker anywhere."""
    if isinstance(value, dict):
        return any(key.startswith(REPR_KEY) for key in value) or any(
            has_repr_marker(v) for v in value.values()
        )
    if isinstance(value, list):
        return any(has_repr_marker(v) for v in value)
    return False
