"""Run configuration: the reference's ``configuration_file``, read per run.

A small YAML file choosing where a run's records go, so the same pipeline runs against
another environment without code changes. Every setting is optional; the defaults are::

    run_log_store:
      type: file              # or "memory": one store per process, records kept in memory
      folder: .run_log_store  # run logs, journals and event logs
    catalog:
      folder: .catalog        # the run's files go to <folder>/<run_id>/
    event_log: false          # record every event to <run log folder>/<run_id>.events.jsonl
    code_identity: true       # record the git commit and dirtiness of the working folder
    cancel_warning: 10        # seconds a cancelled run may take to end before a warning

PostgreSQL (extra ``postgres``) keeps run logs and event logs in a database shared by every
process and host using the same DSN::

    run_log_store:
      type: postgres
      dsn: postgresql://user@host/db   # or dsn_env: NAME, the DSN read from $NAME
      timeout: 10                      # seconds: connection wait, statement and lock timeouts
      synchronous_commit: false        # true: each commit waits for the server's WAL flush

Relative folders are taken from the working folder when the run starts. The file is looked
at on each ``execute_streaming()`` / ``stream()`` call, and parsed again only when it changed
(another file, size, modification or status-change time); nothing is written to the process
environment. An unknown or ill-typed setting is an error naming it.
"""

from __future__ import annotations

import os
import stat
import time
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal

import attrs
import cattrs
import yaml

from ._convert import check_path, converter, load_yaml, read_regular_file
from ._errors import RunConfigurationError, short_repr
from ._filestore import DEFAULT_FOLDER
from ._validators import is_finite_number

__all__ = ["CatalogConfig", "Configuration", "RunLogStoreConfig", "load_configuration"]


def _non_empty(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not value:
        raise ValueError(f"{attribute.name!r} must be a non-empty folder path")


def _positive_seconds(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not (0 < value < float("inf")):
        raise ValueError(f"{attribute.name!r} must be a number of seconds > 0 (got {value!r})")


@attrs.frozen(kw_only=True)
class RunLogStoreConfig:
    type: Literal["file", "memory", "postgres"] = "file"
    folder: str = attrs.field(default=DEFAULT_FOLDER, validator=_non_empty)
    dsn: str = ""
    dsn_env: str = ""
    timeout: float = attrs.field(default=10.0, validator=_positive_seconds)
    synchronous_commit: bool = False

    def __attrs_post_init__(self) -> None:
        if self.type == "postgres" and bool(self.dsn) == bool(self.dsn_env):
            raise ValueError(
                "a 'postgres' run_log_store takes 'dsn' or 'dsn_env' (the name of an "
                "environment variable holding the DSN), exactly one of them"
            )
        if self.type != "postgres" and (self.dsn or self.dsn_env):
            raise ValueError(f"'dsn' and 'dsn_env' are for type 'postgres' (got {self.type!r})")

    def postgres_dsn(self) -> str:
        """The DSN, read from the environment variable named by ``dsn_env`` if set.

        Raises:
            RunConfigurationError: that variable is not set or is empty.
        """
        if self.dsn:
            return self.dsn
        value = os.environ.get(self.dsn_env, "")
        if not value:
            raise RunConfigurationError(
                f"run_log_store.dsn_env names the environment variable {self.dsn_env!r}, "
                "which is not set or is empty"
            )
        return value


@attrs.frozen(kw_only=True)
class CatalogConfig:
    folder: str = attrs.field(default=".catalog", validator=_non_empty)


@attrs.frozen(kw_only=True)
class Configuration:
    run_log_store: RunLogStoreConfig = RunLogStoreConfig()
    catalog: CatalogConfig = CatalogConfig()
    event_log: bool = False
    code_identity: bool = True
    cancel_warning: float = attrs.field(default=10.0, validator=_positive_seconds)


def _describe_error(exc: BaseException, type_: type | None) -> str:
    if typing.get_origin(type_) is Literal:
        choices = " or ".join(repr(choice) for choice in typing.get_args(type_))
        return f"must be {choices}"
    if isinstance(exc, ValueError) and not isinstance(exc, cattrs.BaseValidationError):
        return str(exc)  # our validators' messages name the setting and what it takes
    return cattrs.v.format_exception(exc, type_)


# Settings are checked, not coerced: the converter would make ``event_log: 'yes'`` True and
# ``folder: 3`` the folder "3". Each value must already be of its setting's type.


def _check_settings(raw: Mapping[Any, Any], cls: type, where: str) -> list[str]:
    hints = typing.get_type_hints(cls)
    known = [field.name for field in attrs.fields(cls)]
    problems = []
    for key, value in raw.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in known:
            problems.append(f"unknown setting {path!r} (settings here: {', '.join(known)})")
        else:
            problems.extend(_check_value(value, hints[key], path))
    return problems


def _check_value(value: object, type_: Any, path: str) -> list[str]:
    given = f"(got {short_repr(value)})"
    if attrs.has(type_):
        if not isinstance(value, dict):
            return [f"{path!r} must be a mapping of settings {given}"]
        return _check_settings(value, type_, path)
    options = typing.get_args(type_) if isinstance(type_, types.UnionType) else (type_,)
    if value is None and type(None) in options:
        return []
    options = tuple(option for option in options if option is not type(None))
    if len(options) != 1:
        return []  # a setting of a richer type: the converter's own checks apply
    (expected,) = options
    if typing.get_origin(expected) is Literal:
        choices = typing.get_args(expected)
        if isinstance(value, str) and value in choices:
            return []
        return [f"{path!r} must be {' or '.join(map(repr, choices))} {given}"]
    if expected is bool and not isinstance(value, bool):
        return [f"{path!r} must be true or false {given}"]
    if expected is str and not isinstance(value, str):
        return [f"{path!r} must be a str {given}"]
    if expected is int and (isinstance(value, bool) or not isinstance(value, int)):
        return [f"{path!r} must be an int {given}"]
    if expected is float and not is_finite_number(value):
        return [f"{path!r} must be a finite number {given}"]
    return []


#: Parsed configurations by the text they were parsed from, and the text by the identity of
#: the file it was read from (device, inode, size, modification and status-change times):
#: an unchanged file is parsed once. A file changed less than ``_RACY_NS`` ago is read again
#: (file times are coarse: a rewrite within one tick keeps them), but parsed only if its
#: text changed.
_parsed: dict[str, Configuration] = {}
_texts: dict[tuple[int, int, int, int, int], str] = {}
_KEPT = 32
_RACY_NS = 2_000_000_000


#: The configuration of an empty path (immutable: one for every run).
_DEFAULTS = Configuration()


def _identity(path: str) -> tuple[int, int, int, int, int] | None:
    try:
        found = os.stat(path)
    except (OSError, ValueError):
        return None  # the full read says what is wrong
    if not stat.S_ISREG(found.st_mode):
        return None
    if time.time_ns() - max(found.st_mtime_ns, found.st_ctime_ns) < _RACY_NS:
        return None
    return (found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns, found.st_ctime_ns)


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
    if len(cache) >= _KEPT:
        cache.clear()
    cache[key] = value


def load_configuration(path: str) -> Configuration:
    """Read a configuration file; an empty path gives the defaults.

    A file already parsed and unchanged since gives the same (immutable) configuration.

    Raises:
        RunConfigurationError: the file cannot be read (or is not a regular file), is not
            YAML, or has unknown or ill-typed settings (each one named, with the value given).
    """
    if type(path) is not str:  # a str is a path: not the isinstance check of a union
        check_path(path, "configuration_file")
    if not path:
        return _DEFAULTS
    identity = _identity(path)
    text = _texts.get(identity) if identity is not None else None
    if text is None:
        text = read_regular_file(path, "configuration_file")
        if identity is not None:
            _remember(_texts, identity, text)
    configuration = _parsed.get(text)
    if configuration is None:
        configuration = _parse(path, text)
        _remember(_parsed, text, configuration)
    return configuration


def _parse(path: str, text: str) -> Configuration:
    shown = os.fspath(path)
    try:
        raw = load_yaml(text) or {}
    except yaml.YAMLError as exc:
        raise RunConfigurationError(f"configuration_file {shown!r} is not YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise RunConfigurationError(
            f"configuration_file {shown!r} must hold a mapping of settings "
            f"(got {type(raw).__name__})"
        )
    problems = _check_settings(raw, Configuration, "")
    if problems:
        raise RunConfigurationError(f"configuration_file {shown!r}: {'; '.join(problems)}")
    try:
        return converter.structure(raw, Configuration)
    except Exception as exc:
        details = (
            "; ".join(cattrs.transform_error(exc, "configuration", _describe_error))
            if isinstance(exc, cattrs.BaseValidationError)
            else str(exc)
        )
        raise RunConfigurationError(f"configuration_file {shown!r}: {details}") from exc
