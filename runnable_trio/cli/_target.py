"""Finding what a command runs: ``TARGET`` and ``-p NAME=VALUE``.

``TARGET`` is ``module:attr`` or ``path/to/file.py:attr``: a pipeline, or a zero-argument
callable returning one. A file under the working folder whose folders are identifiers is
imported by its dotted name (``examples/llm_stream.py`` as ``examples.llm_stream``), so the
functions of its pipeline have a module name that imports again later (``retry`` without
``TARGET`` relies on it); any other file is imported under its own name, its folder first on
``sys.path``.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

from .._pipeline import AsyncPipeline

__all__ = ["TargetError", "cwd_on_path", "import_module", "load_target", "parse_parameter"]


class TargetError(Exception):
    """A target that cannot be loaded, or a parameter that cannot be read (a usage error)."""


def parse_parameter(text: str) -> tuple[str, Any]:
    """``NAME=VALUE``: the value as JSON, else the literal string (as ``RUNNABLE_PRM_*``)."""
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not name.isidentifier():
        raise TargetError(f"a parameter is NAME=VALUE with NAME an identifier (got {text!r})")
    try:
        return name, json.loads(value)
    except ValueError:
        return name, value


def load_target(target: str) -> AsyncPipeline:
    """The pipeline ``target`` names (calling it first if it is a zero-argument callable).

    Raises:
        TargetError: the target is malformed, does not import, or is not a pipeline.
    """
    where, sep, attr = target.rpartition(":")
    if not sep or not where or not attr:
        raise TargetError(f"TARGET must be module:attr or path/to/file.py:attr (got {target!r})")
    module = import_module(where)
    try:
        value: Any = module
        for part in attr.split("."):
            value = getattr(value, part)
    except AttributeError:
        raise TargetError(f"{where!r} has no attribute {attr!r}") from None
    if not isinstance(value, AsyncPipeline) and callable(value):
        try:
            value = value()
        except Exception as exc:
            raise TargetError(
                f"calling {target!r} to build the pipeline failed: {type(exc).__name__}: {exc}"
            ) from exc
    if not isinstance(value, AsyncPipeline):
        raise TargetError(
            f"{target!r} must be an AsyncPipeline or a zero-argument callable returning one "
            f"(got {type(value).__name__})"
        )
    return value


def cwd_on_path() -> None:
    """Put the working folder first on ``sys.path``, as ``python -m`` does (a console script
    has no such entry)."""
    cwd = str(Path.cwd())
    if cwd not in sys.path:
        sys.path.insert(0, cwd)


def import_module(where: str) -> Any:
    """The module named ``where``: a dotted name, or the path of a ``.py`` file."""
    cwd_on_path()
    is_file = where.endswith(".py") or "/" in where or "\\" in where
    try:
        if not is_file:
            return importlib.import_module(where)
        return _import_file(Path(where))
    except TargetError:
        raise
    except Exception as exc:
        raise TargetError(f"cannot import {where!r}: {type(exc).__name__}: {exc}") from exc


def _import_file(path: Path) -> Any:
    if not path.is_file():
        raise TargetError(f"no file {str(path)!r}")
    resolved = path.resolve()
    try:
        relative = resolved.relative_to(Path.cwd().resolve()).with_suffix("")
    except ValueError:
        relative = None
    if relative is not None and all(part.isidentifier() for part in relative.parts):
        return importlib.import_module(".".join(relative.parts))
    name = resolved.stem
    folder = str(resolved.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None or spec.loader is None:
        raise TargetError(f"{str(path)!r} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module
