"""Run-log stores: where run records are kept, behind one protocol.

:class:`RunLogStore` is the whole contract of a store. The runner creates the record when the
run starts (or reopens it when a failed run is retried), reports each finished step (so a
durable store can make it durable at once), and finishes the record when the run ends,
shielded from cancellation. Readers, retries and the command line load a record, list
:class:`RunSummary` lines, and ask whether a run's writer still holds it (:meth:`alive`). No
code outside a store depends on which store it is: the configuration names one through
``store_from_configuration`` (``_stores``).

The in-memory store (here) keeps the live record objects themselves; the file store (the
default) is in ``_filestore``.
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
    """What the runner, the readers and the retries need from a run-log store."""

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
        """A step (at any depth) has ended; ``run_log`` already contains it.

        Not called where the store says ``wants_step_finished`` is false (an attribute it
        may have: the memory store's is, whose record is the live one). For a step that
        succeeded, a store may offer the same as a plain call, ``step_finished_now`` (an
        attribute: the callable, or None), which the runner then makes instead of awaiting
        this (the file store's, which never waits).
        """
        ...

    async def finish(self, run_log: RunLog) -> None:
        """The run has ended; ``run_log.status`` is final. Called shielded from cancellation."""
        ...

    def load(self, run_id: str) -> RunLog:
        """The record of a run. Raises ``KeyError`` if there is none."""
        ...

    def runs(self) -> list[RunSummary]:
        """Every recorded run, newest first, without reading whole records."""
        ...

    def alive(self, run_id: str) -> bool | None:
        """Whether the run's writer holds it now (``None``: this store cannot tell)."""
        ...


class MemoryRunLogStore:
    """Keeps run records in this process, for tests and for callers who want no files.

    ``type: memory`` in a configuration names one such store shared by the whole process, so
    ``read_run_log``, ``list_runs`` and the retries find its runs there. Every record stays
    for as long as the store does (none is evicted): not a store for a long-running server.
    """

    #: ``exists`` only looks the id up (nothing else is checked at a first contact): a run
    #: with a generated id, unique, does not ask it (``_prepare``).
    exists_only_looks = True

    #: A reader of a live run sees the live record itself: every running step's record is
    #: in it from the step's start (``AsyncPythonTask.run_alone``).
    reads_live_record = True

    def __init__(self) -> None:
        self._runs: dict[str, RunLog] = {}
        self._writing: set[str] = set()

    def __repr__(self) -> str:
        return f"<MemoryRunLogStore of {len(self._runs)} runs>"

    def exists(self, run_id: str) -> bool:
        return run_id in self._runs

    async def create(self, run_log: RunLog) -> None:
        if run_log.run_id in self._runs:
            raise RunConfigurationError(f"a run with id {run_log.run_id!r} already exists")
        self._runs[run_log.run_id] = run_log
        self._writing.add(run_log.run_id)

    async def reopen(self, run_log: RunLog) -> None:
        run_id = run_log.run_id
        if run_id not in self._runs:
            raise RunConfigurationError(f"no run with id {run_id!r} to retry")
        if run_id in self._writing:
            raise RunConfigurationError(f"run {run_id!r} is still going: wait for it to end")
        self._runs[run_id] = run_log
        self._writing.add(run_id)

    @property
    def wants_step_finished(self) -> bool:
        """Whether :meth:`step_finished` is to be called: not this one, which does nothing
        (the live record is the stored one; a coroutine made and awaited per step for
        nothing), but a subclass's that does something."""
        return type(self).step_finished is not MemoryRunLogStore.step_finished

    async def step_finished(self, run_log: RunLog, step: StepLog) -> None:
        pass  # the live record is the stored one

    async def finish(self, run_log: RunLog) -> None:
        self._writing.discard(run_log.run_id)

    def load(self, run_id: str) -> RunLog:
        return self._runs[run_id]

    def runs(self) -> list[RunSummary]:
        """Every recorded run, newest first."""
        found = [
            RunSummary(
                run_id=run.run_id,
                status=run.status,
                tag=run.tag,
                pipeline_name=run.pipeline_name,
                started_at=run.started_at,
                ended_at=run.ended_at,
                alive=run.run_id in self._writing,
            )
            for run in self._runs.values()
        ]
        found.sort(key=lambda run: run.started_at, reverse=True)
        return found

    def alive(self, run_id: str) -> bool:
        """Whether a run of this process is writing the record now."""
        return run_id in self._writing
