"""Reading run logs: one run by id, or every run newest first, for the CLI and users' tools.

Both read the file store's folder named by the configuration file (``.run_log_store/`` by
default); they are synchronous, plain file reads, usable outside Trio. A run still going is
read with the steps finished so far.
"""

from __future__ import annotations

from ._config import load_configuration
from ._errors import RunConfigurationError
from ._filestore import FileRunLogStore, RunSummary
from ._runid import validate_run_id
from ._runlog import RunLog

__all__ = ["list_runs", "read_run_log"]


def _store(configuration_file: str) -> FileRunLogStore:
    configuration = load_configuration(configuration_file)
    if configuration.run_log_store.type == "postgres":
        return configuration.make_store()  # type: ignore[return-value]  # same interface
    if configuration.run_log_store.type != "file":
        raise RunConfigurationError(
            "the run-log store of this configuration is 'memory': its runs live only in the "
            "process that ran them (use events.run_log / run.run_log there)"
        )
    return FileRunLogStore(configuration.run_log_store.folder)


def read_run_log(run_id: str, *, configuration_file: str = "") -> RunLog:
    """The record of run ``run_id``.

    Raises:
        RunConfigurationError: an invalid id, no such run, or a file that is not a run log.
    """
    store = _store(configuration_file)
    try:
        return store.load(validate_run_id(run_id))
    except KeyError:
        where = getattr(store, "folder", store)  # a file store's folder, another store's repr
        raise RunConfigurationError(f"no run with id {run_id!r} in {str(where)!r}") from None


def list_runs(*, configuration_file: str = "") -> list[RunSummary]:
    """Every recorded run, newest first, with its status and times."""
    return _store(configuration_file).runs()
