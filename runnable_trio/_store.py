"""Run-log stores: where run records are kept.

The runner talks to a store through :class:`RunLogStore` only: it creates the record when the
run starts (or reopens it when a failed run is retried), reports each finished step (so a
durable store can make it durable at once), and finishes the record when the run ends,
shielded from cancellation. The in-memory store keeps the live record objects themselves; the
file store (the default) is in ``_filestore``.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol

import attrs

from ._errors import RunConfigurationError
from ._runlog import RunLog, Status, StepLog

__all__ = ["MemoryRunLogStore", "RunLogStore", "RunSummary"]


@attrs.frozen(kw_only=True)
class RunSummary:
    """One line of a store's :meth:`~RunLogStore.runs`: a run's id, status, times, liveness.

    Attributes:
        alive: ``True`` while the run's writer holds it, ``False`` once it is gone (a
            ``PROCESSING`` run with ``alive=False`` crashed and can be retried), ``None``
            where the store cannot tell.
    """

    run_id: str
    status: Status
    tag: str
    pipeline_name: str
    started_at: dt.datetime
    ended_at: dt.datetime | None
    alive: bool | None


class RunLogStore(Protocol):
    """What the runner needs from a run-log store."""

    def exists(self, run_id: str) -> bool:
        """Whether a run with this id is already recorded (checked before a run starts)."""
        ...

    async def create(self, run_log: RunLog) -> None:
        """Record a new run. Raises ``RunConfigurationError`` if the id is taken."""
        ...

    async def reopen(self, run_log: RunLog) -> None:
        """A recorded run is retried; ``run_log`` (as loaded) is ``PROCESSING`` again.

        Raises ``RunConfigurationError`` if the run is going on somewhere.
        """
        ...

    async def step_finished(self, run_log: RunLog, step: StepLog) -> None:
        """A step (at any depth) has ended; ``run_log`` already contains it."""
        ...

    async def finish(self, run_log: RunLog) -> None:
        """The run has ended; ``run_log.status`` is final. Called shielded from cancellation."""
        ...

    def load(self, run_id: str) -> RunLog:
        """The record of a run. Raises ``KeyError`` if there is none."""
        ...


class MemoryRunLogStore:
    """Keeps run records in this process, for tests and for callers who want no files."""

    def __init__(self) -> None:
        self._runs: dict[str, RunLog] = {}

    def exists(self, run_id: str) -> bool:
        return run_id in self._runs

    async def create(self, run_log: RunLog) -> None:
        if run_log.run_id in self._runs:
            raise RunConfigurationError(f"a run with id {run_log.run_id!r} already exists")
        self._runs[run_log.run_id] = run_log

    async def reopen(self, run_log: RunLog) -> None:
        if run_log.run_id not in self._runs:
            raise RunConfigurationError(f"no run with id {run_log.run_id!r} to retry")
        self._runs[run_log.run_id] = run_log

    async def step_finished(self, run_log: RunLog, step: StepLog) -> None:
        pass  # the live record is the stored one

    async def finish(self, run_log: RunLog) -> None:
        pass

    def load(self, run_id: str) -> RunLog:
        return self._runs[run_id]

    def runs(self) -> list[RunLog]:
        """Every recorded run, newest first."""
        return sorted(self._runs.values(), key=lambda r: r.started_at, reverse=True)
