"""The catalog: files a task gets from, and puts into, its run's catalog folder."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from ._errors import PipelineDefinitionError

__all__ = ["Catalog"]


def _patterns(value: object) -> object:
    return tuple(value) if isinstance(value, list | tuple) else value


def _check_patterns(instance: Catalog, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, tuple) or not all(isinstance(p, str) and p for p in value):
        raise PipelineDefinitionError(
            f"Catalog: {attribute.name!r} must be a list of non-empty glob str (got {value!r})"
        )


@attrs.frozen(kw_only=True)
class Catalog:
    """Files to copy around a task.

    Args:
        get: glob patterns copied from ``.catalog/<run_id>/`` into the working folder
            before the task runs.
        put: glob patterns copied from the working folder into ``.catalog/<run_id>/``
            after the task succeeds.
        store_copy: keep a copy in the catalog (True) or only record the file's hash.
    """

    get: Sequence[str] = attrs.field(default=(), converter=_patterns, validator=_check_patterns)
    put: Sequence[str] = attrs.field(default=(), converter=_patterns, validator=_check_patterns)
    store_copy: bool = True
