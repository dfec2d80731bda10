"""Run configuration: the reference's ``configuration_file``, read per run.

A small YAML file choosing where the run log goes, so the same pipeline runs against another
environment without code changes::

    run_log_store:
      type: memory        # or "file" (the default)
      folder: .run_log_store

Nothing is written to the process environment; every run reads its own file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import attrs
import cattrs
import yaml

from ._convert import converter
from ._errors import RunConfigurationError
from ._store import MemoryRunLogStore, RunLogStore

__all__ = ["Configuration", "RunLogStoreConfig", "load_configuration"]


@attrs.frozen(kw_only=True)
class RunLogStoreConfig:
    type: Literal["memory"] = "memory"
    folder: str = ".run_log_store"


@attrs.frozen(kw_only=True)
class Configuration:
    run_log_store: RunLogStoreConfig = RunLogStoreConfig()

    def make_store(self) -> RunLogStore:
        return MemoryRunLogStore()


def load_configuration(path: str) -> Configuration:
    """Read a configuration file; an empty path gives the defaults.

    Raises:
        RunConfigurationError: the file cannot be read, is not YAML, or has unknown or
            ill-typed settings (each one named).
    """
    if not path:
        return Configuration()
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise RunConfigurationError(f"cannot read configuration_file {path!r}: {exc}") from exc
    try:
        return converter.structure(raw, Configuration)
    except Exception as exc:
        details = (
            "; ".join(cattrs.transform_error(exc))
            if isinstance(exc, cattrs.BaseValidationError)
            else str(exc)
        )
        raise RunConfigurationError(f"configuration_file {path!r}: {details}") from exc
