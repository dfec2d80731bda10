"""Reading run logs: one run by id, or every run newest first, for the CLI and users' tools.

Both read the store the configuration file names (``store_from_configuration``: by default
the files under ``.run_log_store/``; with ``type: memory``, the memory store of this process),
through the store protocol only. They are synchronous, usable outside Trio. A run still going
is read with the steps finished so far; ``RunSummary.alive`` tells a live run from a crashed
one.
"""

from __future__ import annotations

from ._config import load_configuration
from ._errors import RunConfigurationError
from ._runid import validate_run_id
from ._runlog import RunLog
from ._store import RunLogStore, RunSummary
from ._stores import store_from_configuration

__all__ = ["list_runs", "read_run_log"]


def _store(configuration_file: str) -> RunLogStore:
    return store_from_configuration(load_configuration(configuration_file))


def read_run_log(run_id: str, *, configuration_file: str = "") -> RunLog:
    """The record of run ``run_id``.

    Raises:
        RunConfigurationError: an invalid id, no such run, or a file that is not a run log.
    """
    store = _store(configuration_file)
    try:
        return store.load(validate_run_id(run_id))
    except KeyError:
        raise RunConfigurationError(f"no run with id {run_id!r} in {store!r}") from None


def list_runs(*, configuration_file: str = "") -> list[RunSummary]:
    """Every recorded run, newest first, with its status and times."""
    return _store(configuration_file).runs()
