"""``PreparedRun``: one run, checked and ready, and how it executes.

``PreparedRun.execute`` runs the pipeline in the task it is given, sending its events into the
run's one bounded memory channel (``_events.open_event_channel``), whose send side it closes
once its task tree has ended, and keeps how the run ended for the consumer
(``_stream.EventStream``). It is built by ``_prepare`` (a new run or a retry); the two ways to
consume it are ``_stream.open_stream`` (an ``async with``) and ``_streaming.StreamingRun``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, final

import attrs
import trio

from ._catalog import RunCatalog
from ._codeid import Recording, recording_code_identity
from ._errors import ExecutionFailedError
from ._eventlog import EventLogSink
from ._events import EventSend, EventSink, Lifecycle
from ._groups import only_cancelled
from ._runlog import RunLog, Status, StepLog, describe_error
from ._runner import (
    RunContext,
    close_abandoned,
    cut_short,
    live_steps,
    run_pipeline,
)
from ._scope import Scope
from ._store import RunLogStore
from ._telemetry import run_telemetry

if TYPE_CHECKING:
    from ._pipeline import AsyncPipeline

__all__ = ["PreparedRun", "innermost"]

logger = logging.getLogger("runnable_trio")


@final
@attrs.define(eq=False)
class PreparedRun:
    """One run, ready to execute; afterwards it holds how the run ended."""

    pipeline: AsyncPipeline
    run_log: RunLog
    parameters: dict[str, Any]
    store: RunLogStore
    log_level: int
    attribution: bool
    buffer_size: int
    catalog: RunCatalog
    event_log: EventLogSink | None = None
    code_identity: bool = True
    #: A retry of a recorded run (``_rerun``): its record is reopened, not created, and the
    #: steps that succeeded are reused, the others resumed with new attempts.
    retrying: bool = False
    reuse: Mapping[str, StepLog] = attrs.field(factory=dict)
    resume: Mapping[str, StepLog] = attrs.field(factory=dict)
    error: Exception | None = None
    #: A ``BaseException`` that is not a cancellation (``KeyboardInterrupt``, ``SystemExit``)
    #: that ended the run: the consumer receives it as itself.
    interrupt: BaseException | None = None
    finished: bool = False
    #: Set once the run has ended (``finished`` as an event, to wait on).
    ended: trio.Event = attrs.field(factory=trio.Event)
    #: Seconds after the run is cancelled before a warning names the steps still running.
    cancel_warning: float = 10.0
    #: The paths of the steps running now (filled in by the runner).
    running: set[str] = attrs.field(factory=set)
    #: The code identity being taken while the pipeline runs (``_codeid``).
    _code: Recording | None = attrs.field(default=None, init=False)
    #: The producer side of the run's events, once it has started.
    _sink: EventSink | None = attrs.field(default=None, init=False)

    @property
    def run_id(self) -> str:
        return self.run_log.run_id

    async def execute(self, send: EventSend) -> None:
        """Run the pipeline, sending its events; never raises an ``Exception``.

        A failure is kept in ``error`` for the consumer. The run log's final status is
        written shielded from cancellation before the channel closes, so a consumer that saw
        the end of the stream reads a final status.

        Cancellation: the pipeline is cancelled, the run ends ``CANCELLED``, and
        ``Cancelled`` propagates. So does a ``KeyboardInterrupt`` or ``SystemExit`` a task
        raised, which is also kept in ``interrupt`` (the run ends ``CANCELLED`` too).
        """
        sink = self._sink = EventSink(send, self.run_id, self.attribution)
        run_log = self.run_log
        ctx = RunContext(
            self.run_id,
            sink,
            self.store,
            run_log,
            self.log_level,
            catalog=self.catalog,
            reuse=self.reuse,
            resume=self.resume,
            running=self.running,
        )
        scope = Scope(dict(self.parameters))
        try:
            if self.retrying:
                # Only now: a retry prepared but never started leaves the record as it was.
                run_log.reopen()
                close_abandoned(run_log.steps)
                await self.store.reopen(run_log)
            else:
                await self.store.create(run_log)
            if self.event_log is not None:
                self.event_log.start()  # the record is this run's: so is the event log
        except Exception as exc:  # e.g. the id was taken meanwhile: that run's record stays
            self.error = exc
            run_log.end(Status.FAIL, exc)  # this run's own record (in memory) is final too
            self._ended(send)
            return
        except BaseException:  # cancelled before it started: the record says so
            run_log.end(Status.CANCELLED)
            self._ended(send)
            raise
        # The run's span (None without tracing), current in this task from here on, so
        # every way out passes the `finally` below, which ends it.
        telemetry = ctx.telemetry = run_telemetry(self.run_id, self.pipeline.name)
        # Lifecycle events exist only with attribution: without it, no call for them.
        attribution = self.attribution
        try:
            if attribution:
                await sink.lifecycle(Lifecycle.RUN_STARTED, "", pipeline=self.pipeline.name)
            async with recording_code_identity(
                run_log, self.code_identity, str(self.catalog.workdir)
            ) as self._code:
                await run_pipeline(ctx, self.pipeline, scope, "", run_log.steps)
        except Exception as exc:
            cut_short(ctx, run_log.steps)  # what the failure cut short and no step marked
            await sink.consumer_first()
            self.error = exc
            run_log.step = ctx.failure_origin(exc) or getattr(exc, "step", None)
            run_log.parameters_out = dict(scope.values)
            run_log.end(Status.FAIL, exc)
            if attribution:
                await sink.lifecycle(
                    Lifecycle.RUN_FAILED,
                    "",
                    step=run_log.step,
                    error_type=type(exc).__name__,
                    error_message=str(exc),
                )
        except BaseException as exc:
            cut_short(ctx, run_log.steps)  # the steps cancelled leave their records to it
            run_log.end(Status.CANCELLED)
            if attribution:
                sink.lifecycle_nowait(Lifecycle.RUN_CANCELLED, "")
            if not only_cancelled(exc):
                self.interrupt = exc
            raise
        else:
            await sink.consumer_first()
            run_log.parameters_out = dict(scope.values)
            run_log.end(Status.SUCCESS)
            if attribution:
                await sink.lifecycle(Lifecycle.RUN_COMPLETED, "")
        finally:
            try:
                with trio.CancelScope(shield=True):
                    await self.store.finish(run_log)
            except Exception as exc:
                # A record that cannot be finished (disk full...) must reach the consumer,
                # and must not escape this task: it may be a system task, whose exception
                # would end the whole Trio run.
                if self.error is None:
                    self.error = exc
            finally:
                if telemetry is not None:  # ended before the consumer sees the stream end
                    telemetry.end_run(run_log.status, self.error)
                self._ended(send)

    def _ended(self, send: EventSend) -> None:
        self.finished = True
        self.ended.set()
        send.close()

    def event_taken(self) -> None:
        """The consumer has had events of this run and waits for more: the code identity's
        probe may start, and the producers know their events are taken.

        Starting it holds the event loop (a thread, ``git``), so a process's first run does
        it once its first event is out, not before (``_codeid``).
        """
        if self._sink is not None:
            self._sink.taken += 1
        if self._code is not None:
            self._code.start()

    async def wait_cancelled(self) -> None:
        """Wait for the run, which has just been cancelled, to end.

        Once it has not ended ``cancel_warning`` seconds after, a warning names the steps
        still running (a task swallowing ``trio.Cancelled``, a cleanup that takes long, a
        plain ``def`` still in its thread); the wait then goes on until the run has ended.

        Cancellation: shielded; the wait goes on until the run has ended.
        """
        with trio.CancelScope(shield=True):
            with trio.move_on_after(self.cancel_warning):
                await self.ended.wait()
                return
            if self.log_level <= logging.WARNING:
                stuck = innermost(live_steps(self.running))
                logger.warning(
                    "run %s was cancelled %g s ago and has not ended: step%s %s still "
                    "running (a task that catches trio.Cancelled must re-raise it)",
                    self.run_id,
                    self.cancel_warning,
                    "s" if len(stuck) > 1 else "",
                    ", ".join(repr(path) for path in stuck),
                )
            await self.ended.wait()

    def failure(self) -> ExecutionFailedError | None:
        """The error the consumer receives, chained to the cause, if the run failed."""
        if self.error is None:
            return None
        failure = ExecutionFailedError.of(
            self.run_id, self.run_log.step, *describe_error(self.error)
        )
        failure.__cause__ = self.error
        return failure


def innermost(paths: set[str]) -> list[str]:
    """The paths in ``paths`` with no other path of ``paths`` inside them, sorted."""
    return sorted(p for p in paths if not any(q.startswith(p + ".") for q in paths))
