"""Parameters: where a run's initial values come from, and how they reach a task's arguments.

A run's parameters are its own. They are read once, synchronously, when ``execute_streaming()``
or ``stream()`` is called, from three sources, later ones winning:

1. ``parameters_file``: a YAML mapping;
2. ``RUNNABLE_PRM_<name>`` environment variables: JSON-decoded (the literal string when that
   fails); the name is lower-cased, as in the reference;
3. the ``parameters`` mapping.

Reading the environment at the call, before any checkpoint, is what makes the reference's
"set ``os.environ``, then call" pattern safe when requests run concurrently: nothing is read
later, and nothing is ever written to the environment.

A task's arguments bind by name. An annotated argument is converted with the library's cattrs
converter (int, float, bool, list[...], dict[...], attrs classes, dataclasses ...); a
``**kwargs`` argument receives every parameter not bound otherwise.
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
import cattrs
import yaml

from ._convert import check_path, converter, load_yaml, read_regular_file
from ._errors import ParameterError, RunConfigurationError, available_names

__all__ = ["ENV_PREFIX", "Binder", "load_parameters"]

ENV_PREFIX = "RUNNABLE_PRM_"


def load_parameters(
    parameters: Mapping[str, Any] | None,
    parameters_file: str | os.PathLike[str],
    environ: Mapping[str, str] = os.environ,
) -> dict[str, Any]:
    """Merge the three sources into a new dict (file < environment < ``parameters``).

    Raises:
        RunConfigurationError: the file is missing or not a YAML mapping, or ``parameters``
            is not a mapping with str keys.
    """
    values: dict[str, Any] = {}
    check_path(parameters_file, "parameters_file")
    if parameters_file:
        values.update(_read_parameters_file(Path(parameters_file)))
    for key in _prefixed_names(environ):
        values[key[len(ENV_PREFIX) :].lower()] = _decode_env(environ[key])
    if parameters is not None:
        if not isinstance(parameters, Mapping):
            raise RunConfigurationError(
                f"'parameters' must be a mapping of names to values (got {parameters!r})"
            )
        _check_names(parameters, "'parameters'")
        values.update(parameters)
    return values


#: ``os.environ`` as last seen (its encoded mapping, copied) and the names in it that start
#: with ``ENV_PREFIX``: the process environment is compared (one C-level dict comparison),
#: and scanned again only when it changed; the values are read at each run.
_seen: tuple[dict[Any, Any], list[str]] = ({}, [])


def _prefixed_names(environ: Mapping[str, str]) -> list[str]:
    """The names in ``environ`` that start with ``ENV_PREFIX`` followed by a name."""
    raw = getattr(environ, "_data", None) if environ is os.environ else None
    if not isinstance(raw, dict):
        # Iterate over the names only: os.environ decodes every value it hands out.
        return [k for k in environ if k.startswith(ENV_PREFIX) and len(k) > len(ENV_PREFIX)]
    global _seen
    seen = _seen  # read once: another thread may replace it meanwhile
    if raw != seen[0]:
        snapshot = dict(raw)
        # Matched on the encoded names: decoding every name is what a scan would cost. The
        # names are looked through joined first, in one search (a name holds no NUL): a
        # ``startswith`` per name costs ~1,500 instructions, and most environments hold no
        # parameter at all.
        prefix, nul = os.environ.encodekey(ENV_PREFIX), os.environ.encodekey("\0")
        names = []
        if nul + prefix in nul + nul.join(snapshot):
            names = [
                os.environ.decodekey(k)
                for k in snapshot
                if k.startswith(prefix) and len(k) > len(prefix)
            ]
        seen = _seen = (snapshot, names)
    return seen[1]


def _decode_env(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _read_parameters_file(path: Path) -> dict[str, Any]:
    text = read_regular_file(path, "parameters_file")
    try:
        loaded = load_yaml(text)
    except yaml.YAMLError as exc:
        raise RunConfigurationError(f"parameters_file {str(path)!r} is not YAML: {exc}") from exc
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise RunConfigurationError(
            f"parameters_file {str(path)!r} must hold a mapping of names to values "
            f"(got {type(loaded).__name__})"
        )
    _check_names(loaded, f"parameters_file {str(path)!r}")
    return loaded


def _check_names(values: Mapping[Any, Any], source: str) -> None:
    for name in values:
        if not isinstance(name, str) or not name:
            raise RunConfigurationError(
                f"{source}: parameter names must be non-empty str (got {name!r})"
            )


@attrs.frozen
class _Argument:
    name: str
    annotation: Any  # a type to convert to, or None to pass the value unchanged
    required: bool


def _conversion_target(annotation: Any) -> Any:
    if annotation is inspect.Parameter.empty or annotation is Any or annotation is object:
        return None
    if isinstance(annotation, str):  # an annotation that could not be resolved
        return None
    return annotation


@attrs.frozen
class Binder:
    """How to call one function with parameters; built once per task, when it is built."""

    arguments: tuple[_Argument, ...]
    takes_rest: bool  # the function has **kwargs
    #: Required positional-only arguments: no parameter can reach them, as parameters bind
    #: by name (the task refuses such a function when built). Optional ones keep defaults.
    unbindable: tuple[str, ...] = ()
    #: The function's one argument, where it takes exactly one and no ``**kwargs`` (else
    #: None): a Map item's function mostly takes its item alone, bound then without a loop
    #: or a call (``_ItemScope.arguments``).
    single: _Argument | None = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        arguments = self.arguments
        single = arguments[0] if len(arguments) == 1 and not self.takes_rest else None
        object.__setattr__(self, "single", single)

    @classmethod
    def of(cls, function: Callable[..., Any]) -> Binder:
        """The binder of ``function``.

        Raises:
            ValueError: ``function`` has no signature ``inspect`` can read (``max``).
        """
        try:
            signature = inspect.signature(function, eval_str=True)
        except (NameError, TypeError, SyntaxError):
            signature = inspect.signature(function)
        arguments = []
        unbindable = []
        takes_rest = False
        for parameter in signature.parameters.values():
            if parameter.kind is inspect.Parameter.VAR_KEYWORD:
                takes_rest = True
            elif parameter.kind is inspect.Parameter.POSITIONAL_ONLY:
                if parameter.default is inspect.Parameter.empty:
                    unbindable.append(parameter.name)
            elif parameter.kind is not inspect.Parameter.VAR_POSITIONAL:
                arguments.append(
                    _Argument(
                        parameter.name,
                        _conversion_target(parameter.annotation),
                        parameter.default is inspect.Parameter.empty,
                    )
                )
        return cls(tuple(arguments), takes_rest, tuple(unbindable))

    def bind(self, values: Mapping[str, Any], step: str) -> dict[str, Any]:
        """The keyword arguments for a call, converted to the annotations.

        Raises:
            ParameterError: a required argument has no parameter, or a value cannot be
                converted to its argument's annotation.
        """
        kwargs: dict[str, Any] = {}
        for argument in self.arguments:
            name = argument.name
            if name in values:
                value = values[name]
                target = argument.annotation
                # Checked inline: a call per argument and step otherwise (a value already
                # of its annotation's type, or none to convert to, is the usual case).
                if target is not None and type(value) is not target:
                    value = self._convert(argument, value, step)
                kwargs[name] = value
            elif argument.required:
                raise ParameterError(
                    step,
                    f"no parameter for required argument {argument.name!r} "
                    f"(available parameters: {available_names(values)})",
                )
        if self.takes_rest:
            for name, value in values.items():
                kwargs.setdefault(name, value)
        return kwargs

    def bind_item(
        self, parent: Mapping[str, Any], name: str, item: Any, step: str
    ) -> dict[str, Any] | None:
        """:meth:`bind` over ``parent`` with ``name`` bound to ``item``, without a mapping
        made of them (a Map item's arguments); None where ``bind`` must say more (a required
        argument without a parameter, a ``**kwargs``): the caller binds the usual way then.

        Raises:
            ParameterError: a value cannot be converted to its argument's annotation.
        """
        if self.takes_rest:
            return None
        kwargs: dict[str, Any] = {}
        for argument in self.arguments:
            key = argument.name
            if key == name:
                value = item
            elif key in parent:
                value = parent[key]
            elif argument.required:
                return None
            else:
                continue
            target = argument.annotation
            if target is not None and type(value) is not target:
                value = self._convert(argument, value, step)
            kwargs[key] = value
        return kwargs

    @staticmethod
    def _convert(argument: _Argument, value: Any, step: str) -> Any:
        target = argument.annotation
        if target is None or type(value) is target:
            return value
        try:
            return converter.structure(value, target)
        except Exception as exc:  # cattrs raises several kinds; all mean "cannot convert"
            detail = (
                "; ".join(cattrs.transform_error(exc))
                if isinstance(exc, cattrs.BaseValidationError)
                else str(exc)
            )
            raise ParameterError(
                step,
                f"argument {argument.name!r} expects {getattr(target, '__name__', target)!s}, "
                f"cannot convert {value!r}: {detail}",
            ) from exc
