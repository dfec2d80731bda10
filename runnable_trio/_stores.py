"""Which run-log store a configuration names: the one factory every reader uses.

The runner, the readers (``read_run_log``, ``list_runs``), the retries and the command line
get their store here and then use only the :class:`~runnable_trio._store.RunLogStore`
protocol, so adding a store type means adding a branch here, nothing else.

``type: memory`` names one store shared by the whole process (made when first asked for):
runs started with that configuration are then found by the readers and retries of the same
process. A file store is made once per folder and working folder and shared by the runs and
readers that name it: it holds nothing but the runs it is writing, and a run's start asks
for its store every time (made anew, with its folder made absolute, it cost more than the
look-up, on the way to every run's first event).
"""

from __future__ import annotations

import os

from ._config import Configuration
from ._errors import RunConfigurationError
from ._filestore import FileRunLogStore
from ._store import MemoryRunLogStore, RunLogStore

__all__ = ["process_memory_store", "store_from_configuration"]

_memory_store: MemoryRunLogStore | None = None
#: File stores by folder as configured and working folder.
_file_stores: dict[tuple[str, str], FileRunLogStore] = {}
_FILE_STORES_KEPT = 16


def process_memory_store() -> MemoryRunLogStore:
    """The memory store of this process, the one ``type: memory`` names."""
    global _memory_store
    if _memory_store is None:
        _memory_store = MemoryRunLogStore()
    return _memory_store


def store_from_configuration(
    configuration: Configuration, workdir: str | None = None
) -> RunLogStore:
    """The store the configuration's ``run_log_store`` names.

    Args:
        workdir: the working folder a relative folder is taken from, as ``os.getcwd()``
            gives it (read here if not given).

    Raises:
        RunConfigurationError: an unknown store type (the value given is echoed).
    """
    settings = configuration.run_log_store
    kind: str = settings.type
    if kind == "memory":
        return process_memory_store()
    if kind == "file":
        return _file_store(settings.folder, os.getcwd() if workdir is None else workdir)
    if kind == "postgres":
        from ._pgstore import postgres_store  # imports psycopg: only when configured

        return postgres_store(
            settings.postgres_dsn(), settings.timeout, settings.synchronous_commit
        )
    raise RunConfigurationError(
        f"run_log_store.type must be 'file', 'memory' or 'postgres' (got {kind!r})"
    )


def _file_store(folder: str, workdir: str) -> FileRunLogStore:
    key = (folder, workdir)
    store = _file_stores.get(key)
    if store is None:
        if len(_file_stores) >= _FILE_STORES_KEPT:
            _file_stores.clear()
        store = _file_stores[key] = FileRunLogStore(os.path.join(workdir, folder))
    return store
