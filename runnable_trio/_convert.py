"""The library's cattrs converter: parameter conversion and record (de)serialisation.

One converter, built by :func:`make_converter`, owned by the library and never exposed for
mutation: task arguments are converted to their annotations with it, and the run log and event
records go to and from JSON through it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import cattrs
import yaml

__all__ = ["converter", "load_yaml", "make_converter"]

# libyaml's parser when PyYAML was built with it: parsing a small file per run in pure Python
# costs milliseconds.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


def _structure_bool(value: Any, _: type) -> bool:
    # cattrs' default is bool(value), which turns the string "false" into True.
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(f"{value!r} is not a boolean")


def _structure_datetime(value: Any, _: type) -> dt.datetime:
    return value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)


def make_converter() -> cattrs.Converter:
    """Build the converter the library uses (a new one each call)."""
    conv = cattrs.Converter(forbid_extra_keys=True)
    conv.register_structure_hook(bool, _structure_bool)
    conv.register_structure_hook(dt.datetime, _structure_datetime)
    conv.register_unstructure_hook(dt.datetime, dt.datetime.isoformat)
    return conv


converter = make_converter()


def load_yaml(text: str) -> Any:
    """Parse YAML text with the safe loader (plain data only). Raises ``yaml.YAMLError``."""
    return yaml.load(text, Loader=_YAML_LOADER)
