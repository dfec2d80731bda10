"""The build backend of compat: hatchling, noting whether the wheel is a regular one.

``hatch_build.py`` reads :data:`STANDARD` to choose how to require runnable_trio (see there).
Every PEP 517 hook is hatchling's (those it defines: it leaves out the ``prepare_metadata_*``
ones under pip); the two that make a regular wheel or its metadata set the flag around
hatchling's call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import hatchling.build as _hatchling

#: True while a regular (not editable) wheel or its metadata is being made.
STANDARD = False

_PLAIN = [
    "build_editable",
    "build_sdist",
    "get_requires_for_build_editable",
    "get_requires_for_build_sdist",
    "get_requires_for_build_wheel",
    "prepare_metadata_for_build_editable",
]
_REGULAR = ["build_wheel", "prepare_metadata_for_build_wheel"]


def _as_standard(hook: Callable[..., Any]) -> Callable[..., Any]:
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        global STANDARD
        STANDARD = True
        try:
            return hook(*args, **kwargs)
        finally:
            STANDARD = False

    wrapped.__name__ = hook.__name__
    return wrapped


for _name in _PLAIN + _REGULAR:
    if hasattr(_hatchling, _name):
        _hook = getattr(_hatchling, _name)
        globals()[_name] = _as_standard(_hook) if _name in _REGULAR else _hook
