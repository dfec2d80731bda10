"""The commands' one way to a store: the configuration's store, its runs, one run's record.

Every command reads through the run-log store protocol (``store_from_configuration``), so it
works on whichever store the configuration file names.
"""

from __future__ import annotations

from .._config import load_configuration
from .._errors import RunConfigurationError
from .._runid import validate_run_id
from .._runlog import RunLog
from .._store import RunLogStore, RunSummary
from .._stores import store_from_configuration

__all__ = ["load_run", "open_store", "summaries"]


def open_store(configuration_file: str) -> RunLogStore:
    """The store the configuration file names (the default file store for ``""``).

    Raises:
        RunConfigurationError: the configuration is unusable, or names the memory store,
            whose runs live only in the process that ran them (a command is a new process).
    """
    configuration = load_configuration(configuration_file)
    if configuration.run_log_store.type == "memory":
        raise RunConfigurationError(
            "the run-log store of this configuration is 'memory': its runs live only in the "
            "process that ran them, so no command can read them"
        )
    return store_from_configuration(configuration)


def summaries(store: RunLogStore) -> list[RunSummary]:
    """The store's runs, newest first."""
    return store.runs()


def load_run(store: RunLogStore, run_id: str) -> RunLog:
    """The record of ``run_id``.

    Raises:
        RunConfigurationError: an invalid id or no such run.
    """
    try:
        return store.load(validate_run_id(run_id))
    except KeyError:
        folder = getattr(store, "folder", None)
        where = f" in {str(folder)!r}" if folder is not None else ""
        raise RunConfigurationError(f"no run with id {run_id!r}{where}") from None
