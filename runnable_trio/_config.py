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

Relative folders are taken from the working folder when the run starts. The file is read at
each ``execute_streaming()`` / ``stream()`` call; nothing is written to the process
environment. An unknown or ill-typed setting is an error naming it.
"""

from __future__ import annotations

import os
import typing
from pathlib import Path
from typing import Literal

import attrs
import cattrs
import yaml

from ._convert import converter, load_yaml
from ._errors import RunConfigurationError
from ._filestore import DEFAULT_FOLDER

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


def load_configuration(path: str) -> Configuration:
    """Read a configuration file; an empty path gives the defaults.

    Raises:
        RunConfigurationError: the file cannot be read, is not YAML, or has unknown or
            ill-typed settings (each one named).
    """
    if not path:
        return Configuration()
    try:
        raw = load_yaml(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise RunConfigurationError(f"cannot read configuration_file {path!r}: {exc}") from exc
    if not isinstance(raw, dict):
        raise RunConfigurationError(
            f"configuration_file {path!r} must hold a mapping of settings "
            f"(got {type(raw).__name__})"
        )
    try:
        return converter.structure(raw, Configuration)
    except Exception as exc:
        details = (
            "; ".join(cattrs.transform_error(exc, "configuration", _describe_error))
            if isinstance(exc, cattrs.BaseValidationError)
            else str(exc)
        )
        raise RunConfigurationError(f"configuration_file {path!r}: {details}") from exc
