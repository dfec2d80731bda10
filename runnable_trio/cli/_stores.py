"""The commands' one way to a store: the configuration's store, its runs, one run's record.

Every command reads through the run-log store protocol, so it works on whichever store the
configuration file names.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs

from .._config import load_configuration
from .._errors import RunConfigurationError
from .._runid import validate_run_id
from .._runlog import RunLog, Status
from .._store import RunLogStore

__all__ = ["Summary", "load_run", "open_store", "summaries"]


@attrs.frozen(kw_only=True)
class Summary:
    """One recorded run as ``runs`` lists it; ``alive`` is None where the store cannot tell."""

    run_id: str
    status: Status
    tag: str
    pipeline_name: str
    started_at: dt.datetime
    ended_at: dt.datetime | None
    alive: bool | None


def open_store(configuration_file: str) -> RunLogStore:
    """The store the configuration file names (the default file store for ``""``).

    Raises:
        RunConfigurationError: the configuration is unusable, or names the memory store,
            whose runs live only in the process that ran them.
    """
    configuration = load_configuration(configuration_file)
    if configuration.run_log_store.type == "memory":
        raise RunConfigurationError(
            "the run-log store of this configuration is 'memory': its runs live only in the "
            "process that ran them, so no command can read them"
        )
    return configuration.make_store()


def summaries(store: RunLogStore) -> list[Summary]:
    """The store's runs, newest first."""
    runs = getattr(store, "runs", None)
    if runs is None:
        raise RunConfigurationError(f"{type(store).__name__} cannot list its runs")
    alive_of = getattr(store, "alive", None) or getattr(store, "is_live", None)
    found = []
    for run in runs():
        alive = getattr(run, "alive", None)
        status = Status(run.status)
        if alive is None and status is Status.PROCESSING and alive_of is not None:
            alive = bool(alive_of(run.run_id))
        found.append(
            Summary(
                run_id=run.run_id,
                status=status,
                tag=run.tag,
                pipeline_name=run.pipeline_name,
                started_at=_datetime(run.started_at),
                ended_at=None if run.ended_at is None else _datetime(run.ended_at),
                alive=alive,
            )
        )
    return found


def _datetime(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(str(value))


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
