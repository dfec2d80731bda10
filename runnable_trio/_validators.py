"""Build-time checks shared by every step and policy: uniform errors naming what was expected.

``definition_error`` builds the one shape of build-time error (who, which field, what was
expected, what was given); ``checked_init`` turns a call with wrong arguments into a
``PipelineArgumentError`` naming the class; the ``check_*`` functions are attrs validators.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable
from typing import Any, TypeVar

import attrs

from ._errors import PipelineArgumentError, PipelineDefinitionError, short_repr

__all__ = [
    "check_bool",
    "check_seconds",
    "checked_init",
    "definition_error",
    "describe_owner",
    "is_finite_number",
]

_C = TypeVar("_C", bound=type)


def definition_error(
    owner: object, field: str, expected: str, got: object
) -> PipelineDefinitionError:
    """Build the uniform build-time error: who, which field, what was expected, what was given."""
    return PipelineDefinitionError(
        owner=describe_owner(owner), field=field, expected=expected, given=short_repr(got)
    )


def describe_owner(owner: object) -> str:
    """How an error names what was being built: ``AsyncPythonTask 'fetch'``, ``Retry``."""
    name = getattr(owner, "name", None)
    kind = owner.__name__ if isinstance(owner, type) else type(owner).__name__
    return f"{kind} {name!r}" if isinstance(name, str) and name else kind


def checked_init(cls: _C) -> _C:
    """Make a call with wrong arguments a ``PipelineArgumentError`` naming the class and them.

    A missing required argument, an unknown keyword (a typo) or too many positional arguments
    would otherwise be a bare ``TypeError`` that names neither the step nor what it accepts.
    Works on any class whose ``__init__`` is defined on it (attrs-generated or written).
    """
    original: Callable[..., None] = vars(cls)["__init__"]
    signature = inspect.signature(original)

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        # Nothing extra on the good path: the arguments are looked at only when the call
        # failed with a TypeError, which may also come from inside (then it goes on as it is).
        try:
            original(self, *args, **kwargs)
        except TypeError:
            try:
                signature.bind(self, *args, **kwargs)
            except TypeError:
                raise _argument_error(cls, signature, args, kwargs) from None
            raise

    cls.__init__ = __init__  # type: ignore[misc]
    return cls


def _argument_error(
    cls: type, signature: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> PipelineArgumentError:
    parameters = list(signature.parameters.values())[1:]  # without self
    kind = inspect.Parameter
    positional = [
        p for p in parameters if p.kind in (kind.POSITIONAL_ONLY, kind.POSITIONAL_OR_KEYWORD)
    ]
    keywords = sorted(
        p.name for p in parameters if p.kind in (kind.POSITIONAL_OR_KEYWORD, kind.KEYWORD_ONLY)
    )
    name = kwargs.get(
        "name", args[0] if args and positional and positional[0].name == "name" else ""
    )
    where = f"{cls.__name__} {name!r}" if isinstance(name, str) and name else cls.__name__
    takes_any_keyword = any(p.kind is kind.VAR_KEYWORD for p in parameters)
    unknown = [] if takes_any_keyword else sorted(set(kwargs) - set(keywords))
    if unknown:
        return PipelineArgumentError(
            f"{where}: unknown keyword {', '.join(map(repr, unknown))}; "
            f"accepted keywords are {', '.join(keywords)}"
        )
    usage = f"{cls.__name__}({', '.join(p.name for p in positional)}, ...)"
    if len(args) > len(positional):
        if not positional:
            return PipelineArgumentError(
                f"{where}: takes keyword arguments only ({', '.join(keywords)}), "
                f"got {len(args)} positional"
            )
        return PipelineArgumentError(
            f"{where}: takes at most {len(positional)} positional arguments "
            f"({', '.join(p.name for p in positional)}; the others are keyword-only), "
            f"got {len(args)}"
        )
    given_twice = [p.name for p in positional[: len(args)] if p.name in kwargs]
    if given_twice:
        return PipelineArgumentError(
            f"{where}: {', '.join(map(repr, given_twice))} given both by position and by keyword"
        )
    by_position = {p.name for p in positional[: len(args)]}
    missing = [
        p.name
        for p in parameters
        if p.default is kind.empty
        and p.kind not in (kind.VAR_POSITIONAL, kind.VAR_KEYWORD)
        and p.name not in kwargs
        and p.name not in by_position
    ]
    plural = "s" if len(missing) > 1 else ""
    return PipelineArgumentError(
        f"{where}: missing required argument{plural} {', '.join(map(repr, missing))} "
        f"(usage: {usage})"
    )


def check_bool(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """A field holding a bool."""
    if not isinstance(value, bool):
        raise definition_error(instance, attribute.name, "a bool", value)


def is_finite_number(value: object) -> bool:
    """An int or float (not a bool) that is a finite float: no NaN, inf or 10**400."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)  # an int too large for a float raises OverflowError
    except OverflowError:
        return False


def check_seconds(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """Validate an optional duration in seconds: ``None`` or a positive finite number."""
    if value is None:
        return
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        if is_finite_number(value):
            return
        raise definition_error(
            instance, attribute.name, "a finite number of seconds (a float) or None", value
        )
    raise definition_error(instance, attribute.name, "a positive number of seconds or None", value)
