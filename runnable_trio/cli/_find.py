"""The pipeline of a recorded run, found again: for ``retry RUN_ID`` without a TARGET.

A run's record names its functions by module and qualified name and keeps the hash of its
definition. The modules named are imported again, and a module-level ``AsyncPipeline`` with
that same hash is the pipeline (its functions may have been fixed since: the hash covers
names, not code). A pipeline built by a factory function is not found this way: give the
TARGET then.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from typing import Any

from .._definition import definition_of
from .._errors import RunConfigurationError
from .._pipeline import AsyncPipeline
from .._runlog import RunLog
from ._target import cwd_on_path, import_module

__all__ = ["find_pipeline"]


def find_pipeline(run_log: RunLog) -> AsyncPipeline:
    """The module-level pipeline whose definition hash is the run's.

    Raises:
        RunConfigurationError: none found; the message lists where it looked and why.
    """
    cwd_on_path()
    modules = _module_names(run_log.definition)
    problems: list[str] = []
    for name in modules:
        try:
            module = import_module(name)
        except Exception as exc:
            problems.append(f"{name} ({exc})")
            continue
        for value in vars(module).values():
            if (
                isinstance(value, AsyncPipeline)
                and definition_of(value)[1] == run_log.definition_hash
            ):
                return value
        problems.append(f"{name} (no module-level pipeline with the run's definition)")
    looked = "; ".join(problems) if problems else "the record names no function"
    raise RunConfigurationError(
        f"cannot find the pipeline of run {run_log.run_id!r} again: looked in {looked}. "
        f"Give it as TARGET: retry {run_log.run_id} module:attr"
    )


def _module_names(definition: Any) -> list[str]:
    """The modules of the functions a definition names, first seen first."""
    found: dict[str, None] = {}
    for dotted in _functions(definition):
        module = _importable_prefix(dotted)
        if module is not None:
            found.setdefault(module, None)
    return list(found)


def _functions(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        function = value.get("function")
        if isinstance(function, str):
            yield function
        for item in value.values():
            yield from _functions(item)
    elif isinstance(value, list):
        for item in value:
            yield from _functions(item)


def _importable_prefix(dotted: str) -> str | None:
    """The longest prefix of ``module.qualname`` that names a module which can be found."""
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        name = ".".join(parts[:cut])
        if "<" in name:
            continue
        try:
            if importlib.util.find_spec(name) is not None:
                return name
        except (ImportError, ValueError):
            continue
    return None
