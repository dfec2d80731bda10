"""The library's cattrs converter: parameter conversion and record (de)serialisation.

One converter, built by :func:`make_converter`, owned by the library and never exposed for
mutation: task arguments are converted to their annotations with it, and the run log and event
records go to and from JSON through it.
"""

from __future__ import annotations

import datetime as dt
import os
import stat
from typing import Any

import cattrs
import yaml

from ._errors import RunConfigurationError, short_repr

__all__ = ["check_path", "converter", "load_yaml", "make_converter", "read_regular_file"]

# libyaml's parser when PyYAML was built with it: parsing a small file per run in pure Python
# costs milliseconds.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_CHUNK = 1 << 16

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


def check_path(value: object, what: str) -> None:
    """Refuse a ``what`` that is not a path (str or ``os.PathLike``).

    A mapping is most likely parameters given by position: ``execute_streaming({"x": 5})``
    puts them where ``configuration_file`` goes, so the message says what to write.

    Raises:
        RunConfigurationError: ``value`` is not a str or ``os.PathLike``.
    """
    if isinstance(value, str | os.PathLike):
        return
    hint = "; parameters are keyword-only: parameters={...}" if isinstance(value, dict) else ""
    raise RunConfigurationError(
        f"{what!r} must be a path (str or os.PathLike) (got {short_repr(value)}){hint}"
    )


def read_regular_file(path: str | os.PathLike[str], what: str) -> str:
    """The UTF-8 text of ``path``, which must be a regular file (read synchronously).

    A FIFO, a device or a folder is refused before anything is read: opening a FIFO for
    reading would block the call until a writer came. The file is opened non-blocking and
    checked again through its descriptor, so swapping the path for a FIFO between the two
    checks cannot block either.

    Args:
        path: the file.
        what: the argument it was given as, for the error message (``parameters_file``).

    Raises:
        RunConfigurationError: the file is missing, unreadable, not a regular file, or not
            UTF-8.
    """
    shown = os.fspath(path)
    try:
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):
            raise RunConfigurationError(
                f"{what} {shown!r} must be a regular file (got {_file_kind(mode)})"
            )
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
        try:
            mode = os.fstat(fd).st_mode
            if not stat.S_ISREG(mode):
                raise RunConfigurationError(
                    f"{what} {shown!r} must be a regular file (got {_file_kind(mode)})"
                )
            # Straight from the descriptor: a text-mode file object costs more than reading
            # a small file (a parameters file is read at every run).
            chunks = []
            while chunk := os.read(fd, _CHUNK):
                chunks.append(chunk)
        finally:
            os.close(fd)
        text = b"".join(chunks).decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RunConfigurationError(f"cannot read {what} {shown!r}: {exc}") from exc
    # Line ends as text mode gives them: "\r\n" and "\r" read as "\n".
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def _file_kind(mode: int) -> str:
    kinds = (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((name for test, name in kinds if test(mode)), "not a regular file")
