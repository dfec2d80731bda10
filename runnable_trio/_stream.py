"""Streaming a run: ``stream()`` (an ``async with``) and ``execute_streaming()`` (an iterator).

Both start from :func:`prepare_run`, which does everything that can fail on bad input
synchronously, at the call: parameters are read (this is the "before its first checkpoint" of
the execution contract), the run id is made or checked, the configuration is loaded.

``stream()`` owns the run's nursery: the run is a child task, the caller's block is the
nursery body, so leaving the block cancels the run and waits for it to end.

``execute_streaming()`` returns a :class:`StreamingRun`: a plain async iterator, with no
``async with`` to own a nursery. It runs the run in one Trio *system task* of its own, started
by the first ``__anext__``, so that no ``yield`` ever sits inside a nursery or cancel scope
(the trap trio's ``as_safe_channel`` exists to avoid). The run never outlives the iterator: it
is cancelled and awaited when ``__anext__`` is cancelled or raises and on ``aclose()``, and
cancelled when the iterator is garbage-collected (``break`` without ``aclose``).

Both consume events through :class:`EventStream`, one hop from the producing task through the
run's bounded ``EventBuffer`` (``_buffer.py``), which takes an event out after a cancellation
check only while events are buffered: a burst of events costs no trip through the scheduler.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, NoReturn

import attrs
import sniffio
import trio

from ._buffer import EventBuffer
from ._catalog import RunCatalog
from ._codeid import recording_code_identity
from ._config import load_configuration
from ._definition import definition_of
from ._errors import ExecutionFailedError, RunConfigurationError
from ._eventlog import EventLogSink, open_event_log
from ._events import META_KEY, Event, EventSink, Lifecycle
from ._groups import only_cancelled, raise_without_context, reraise_single
from ._params import load_parameters
from ._runid import new_run_id, validate_run_id
from ._runlog import RunLog, Status, StepLog
from ._runner import RunContext, Scope, close_abandoned, run_pipeline
from ._store import RunLogStore
from ._stores import store_from_configuration
from ._telemetry import run_telemetry

if TYPE_CHECKING:
    from ._pipeline import AsyncPipeline

__all__ = [
    "EventStream",
    "PreparedRun",
    "StreamingRun",
    "check_called_from_trio",
    "open_stream",
    "prepare_run",
]

DEFAULT_BUFFER_SIZE = 256

logger = logging.getLogger("runnable_trio")


def check_called_from_trio(call: str, *, started: bool = False) -> None:
    """Refuse to run from asyncio code, saying what to use instead.

    Args:
        call: what was called, for the message (``"execute_streaming()"``).
        started: the run is starting now, so an event loop must be running; at the call
            itself, plain synchronous code (no event loop yet) is accepted.

    Raises:
        RunConfigurationError: the caller is asyncio code (``asyncio.run``, uvicorn, the
            asyncio side of trio-asyncio), or no Trio run is going when the run starts.
    """
    try:
        library: str | None = sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        library = None
    if library == "trio" or (library is None and not started):
        return
    where = f"from {library} code" if library is not None else "outside trio.run()"
    raise RunConfigurationError(
        f"runnable_trio's {call} runs on Trio, but it was called {where}; from asyncio "
        "code (asyncio.run, FastAPI on uvicorn, the asyncio side of trio-asyncio) use the "
        "same pipeline through the compat package: `import runnable` "
        "(runnable.AsyncPipeline, runnable.AsyncPythonTask ...)"
    )


def check_buffer_size(buffer_size: int | None) -> int:
    """The event buffer's capacity (the default for ``None``), checked."""
    if buffer_size is None:
        return DEFAULT_BUFFER_SIZE
    if isinstance(buffer_size, bool) or not isinstance(buffer_size, int) or buffer_size < 1:
        raise RunConfigurationError(f"buffer_size must be an int >= 1 (got {buffer_size!r})")
    return buffer_size


def log_level_number(value: int | str) -> int:
    """A logging level given by name or number, checked."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        level = logging.getLevelName(value.upper())
        if isinstance(level, int):
            return level
    raise RunConfigurationError(f"log_level must be a logging level name or number (got {value!r})")


def prepare_run(
    pipeline: AsyncPipeline,
    *,
    configuration_file: str,
    run_id: str,
    tag: str,
    parameters_file: str,
    log_level: int | str,
    parameters: Mapping[str, Any] | None,
    attribution: bool,
    buffer_size: int | None,
    event_log: bool | None = None,
    store: RunLogStore | None = None,
) -> PreparedRun:
    """Everything a run needs, checked and read now (synchronously).

    Raises:
        RunConfigurationError: for any unusable argument, before anything runs.
    """
    buffer_size = check_buffer_size(buffer_size)
    if not isinstance(tag, str):
        raise RunConfigurationError(f"tag must be a str (got {tag!r})")
    values = load_parameters(parameters, parameters_file)
    configuration = load_configuration(configuration_file)
    if store is None:
        store = store_from_configuration(configuration)
    run_id = validate_run_id(run_id) if run_id else new_run_id()
    if store.exists(run_id):
        raise RunConfigurationError(f"a run with id {run_id!r} already exists")
    level = log_level_number(log_level)
    definition, definition_hash = definition_of(pipeline)
    folders = configuration.catalog.folder, configuration.run_log_store.folder
    catalog = RunCatalog.for_run(run_id, *folders)
    catalog.check_new()  # a new run's files are created new: nothing may be there yet
    use_event_log = configuration.event_log if event_log is None else bool(event_log)
    return PreparedRun(
        pipeline=pipeline,
        run_log=RunLog(
            run_id=run_id,
            tag=tag,
            pipeline_name=pipeline.name,
            parameters_in=dict(values),
            definition=definition,
            definition_hash=definition_hash,
        ),
        parameters=values,
        store=store,
        log_level=level,
        attribution=bool(attribution),
        buffer_size=buffer_size,
        catalog=catalog,
        event_log=(
            open_event_log(store, configuration.run_log_store.folder, run_id)
            if use_event_log
            else None
        ),
        code_identity=configuration.code_identity,
        cancel_warning=configuration.cancel_warning,
    )


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
    failed_step: str | None = None
    finished: bool = False
    #: Set once the run has ended (``finished`` as an event, to wait on).
    ended: trio.Event = attrs.field(factory=trio.Event)
    #: Seconds after the run is cancelled before a warning names the steps still running.
    cancel_warning: float = 10.0
    #: The paths of the steps running now (filled in by the runner).
    running: set[str] = attrs.field(factory=set)

    @property
    def run_id(self) -> str:
        return self.run_log.run_id

    async def execute(self, buffer: EventBuffer) -> None:
        """Run the pipeline, sending its events; never raises an ``Exception``.

        A failure is kept in ``error`` for the consumer. The run log's final status is
        written shielded from cancellation before the channel closes, so a consumer that saw
        the end of the stream reads a final status.

        Cancellation: the pipeline is cancelled, the run ends ``CANCELLED``, and
        ``Cancelled`` propagates. So does a ``KeyboardInterrupt`` or ``SystemExit`` a task
        raised, which is also kept in ``interrupt`` (the run ends ``CANCELLED`` too).
        """
        sink = EventSink(buffer, self.run_id, self.attribution)
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
            self._ended(buffer)
            return
        except BaseException:  # cancelled before it started: the record says so
            run_log.end(Status.CANCELLED)
            self._ended(buffer)
            raise
        # The run's span (None without tracing), current in this task from here on, so
        # every way out passes the `finally` below, which ends it.
        telemetry = ctx.telemetry = run_telemetry(self.run_id, self.pipeline.name)
        try:
            await sink.lifecycle(Lifecycle.RUN_STARTED, "", pipeline=self.pipeline.name)
            async with recording_code_identity(run_log, self.code_identity):
                await run_pipeline(ctx, self.pipeline, scope, "", run_log.steps)
        except Exception as exc:
            self.error = exc
            self.failed_step = ctx.failure_origin(exc) or getattr(exc, "step", None)
            run_log.failed_step = self.failed_step
            run_log.parameters_out = dict(scope.values)
            run_log.end(Status.FAIL, exc)
            await sink.lifecycle(
                Lifecycle.RUN_FAILED,
                "",
                failed_step=self.failed_step,
                error_type=type(exc).__name__,
                error=str(exc),
            )
        except BaseException as exc:
            run_log.end(Status.CANCELLED)
            sink.lifecycle_nowait(Lifecycle.RUN_CANCELLED, "")
            if not only_cancelled(exc):
                self.interrupt = exc
            raise
        else:
            run_log.parameters_out = dict(scope.values)
            run_log.end(Status.SUCCESS)
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
                self._ended(buffer)

    def _ended(self, buffer: EventBuffer) -> None:
        self.finished = True
        self.ended.set()
        buffer.close()

    async def wait_cancelled(self, *, shield: bool = True) -> None:
        """Wait for the run, which has just been cancelled, to end.

        Once it has not ended ``cancel_warning`` seconds after, a warning names the steps
        still running (a task swallowing ``trio.Cancelled``, a cleanup that takes long, a
        plain ``def`` still in its thread); the wait then goes on until the run has ended.

        Args:
            shield: wait even if the waiting task is cancelled meanwhile.
        """
        with trio.CancelScope(shield=shield):
            with trio.move_on_after(self.cancel_warning):
                await self.ended.wait()
                return
            if self.log_level <= logging.WARNING:
                logger.warning(
                    "run %s was cancelled %g s ago and has not ended: step%s %s still "
                    "running (a task that catches trio.Cancelled must re-raise it)",
                    self.run_id,
                    self.cancel_warning,
                    "s" if len(innermost(self.running)) > 1 else "",
                    ", ".join(repr(path) for path in innermost(self.running)),
                )
            await self.ended.wait()

    def failure(self) -> ExecutionFailedError | None:
        """The error the consumer receives, chained to the cause, if the run failed."""
        if self.error is None:
            return None
        failure = ExecutionFailedError(
            self.run_id, self.failed_step, f"{type(self.error).__name__}: {self.error}"
        )
        failure.__cause__ = self.error
        return failure


class EventStream:
    """The consumer side of a run: ``async for event in events``.

    After the last event, raises ``ExecutionFailedError`` if the run failed.

    Attributes:
        run_id: the run's id.
        run_log: the run's live record; final once the stream has ended.
        last_seq: the sequence number of the last event received (0 before the first).
    """

    __slots__ = (
        "_buffer",
        "_deliver_interrupt",
        "_log",
        "_receiving",
        "_run",
        "_stamp",
        "last_seq",
    )

    def __init__(
        self, buffer: EventBuffer, run: PreparedRun, *, deliver_interrupt: bool = False
    ) -> None:
        self._buffer = buffer
        self._run = run
        # Where the run is not a child of the consumer's nursery (a system task), nothing
        # else would give the consumer a KeyboardInterrupt the run ended with.
        self._deliver_interrupt = deliver_interrupt
        self._receiving = False
        self._stamp = run.attribution
        self._log = run.event_log
        # A retried run's events number on from those of its earlier attempts.
        self.last_seq = 0 if self._log is None else self._log.start_seq

    @property
    def run_id(self) -> str:
        return self._run.run_id

    @property
    def run_log(self) -> RunLog:
        return self._run.run_log

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> Event:
        if self._receiving:
            raise self.busy_error()
        self._receiving = True
        try:
            if self._log is not None and self._log.pending and not self._buffer:
                await self._log.flush()  # idle: write the event log's batch now
            event = await self._buffer.get()
        except trio.EndOfChannel:
            await self._end_log()
            self._end()
        finally:
            self._receiving = False
        self.last_seq += 1
        if self._stamp:
            event[META_KEY]["seq"] = self.last_seq
        if self._log is not None:
            self._log.append(self.last_seq, event)
            if self._log.full:
                await self._log.flush()
        return event

    @property
    def receiving(self) -> bool:
        """Whether a consumer is waiting in ``__anext__`` now."""
        return self._receiving

    def busy_error(self) -> trio.BusyResourceError:
        return trio.BusyResourceError(
            f"run {self.run_id!r}: another task is already iterating this run's events; "
            "one consumer per stream (each event goes to one consumer only; to fan events "
            "out, forward them from the one consumer)"
        )

    async def receive(self) -> Event:
        """The next event. Raises ``trio.EndOfChannel`` after the last one."""
        try:
            return await self.__anext__()
        except StopAsyncIteration:
            raise trio.EndOfChannel from None

    async def _end_log(self) -> None:
        """Close the event log, if any (also done when a consumer leaves early)."""
        if self._log is not None:
            await self._log.close(self._run.run_log)

    def take_interrupt(self) -> BaseException | None:
        """The interrupt the run ended with, if it is this stream's to deliver; once."""
        interrupt = self._run.interrupt
        if interrupt is None or not self._deliver_interrupt:
            return None
        self._deliver_interrupt = False  # the iteration has ended
        return interrupt

    def _end(self) -> NoReturn:
        interrupt = self.take_interrupt()
        if interrupt is not None:
            raise_without_context(interrupt)
        failure = self._run.failure()
        if failure is not None:
            raise failure
        raise StopAsyncIteration


@asynccontextmanager
async def open_stream(run: PreparedRun) -> AsyncIterator[EventStream]:
    """Run ``run`` in a nursery owned by the caller's ``async with`` block."""
    check_called_from_trio("stream()", started=True)
    buffer = EventBuffer(run.buffer_size)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run.execute, buffer, name=f"runnable_trio run {run.run_id}")
            try:
                yield EventStream(buffer, run)
            finally:
                if not run.finished:
                    nursery.cancel_scope.cancel()
                    await run.wait_cancelled()
    except BaseExceptionGroup as group:
        # The run task raises nothing but Cancelled, so what the group holds came from the
        # caller's block: give it back as it was raised.
        reraise_single(group)
    finally:
        if run.event_log is not None:  # the consumer left early: keep what it received
            await run.event_log.close(run.run_log)


class StreamingRun:
    """The iterator ``execute_streaming()`` returns: ``async for event in run:``.

    Safe to ``break`` out of: leaving the iteration in any way cancels the run.

    Attributes:
        run_id: the run's id (known before the run starts).
        run_log: the run's live record; final once the iteration has ended.
        last_seq: the sequence number of the last event received.
    """

    def __init__(self, run: PreparedRun) -> None:
        self._run = run
        self._events: EventStream | None = None
        self._cancel_scope = trio.CancelScope()
        self._done = trio.Event()
        self._token: trio.lowlevel.TrioToken | None = None
        self._closed = False

    @property
    def run_id(self) -> str:
        return self._run.run_id

    @property
    def run_log(self) -> RunLog:
        return self._run.run_log

    @property
    def last_seq(self) -> int:
        """The sequence number of the last event received (0 before the first)."""
        return 0 if self._events is None else self._events.last_seq

    def __aiter__(self) -> StreamingRun:
        return self

    async def __anext__(self) -> Event:
        if self._events is None:
            if self._closed:
                raise StopAsyncIteration
            self._start()
            assert self._events is not None
        elif self._events.receiving:
            # Not a reason to cancel the run: the first consumer is still iterating.
            raise self._events.busy_error()
        try:
            return await self._events.__anext__()
        except (StopAsyncIteration, ExecutionFailedError):
            raise  # the run has ended
        except BaseException:
            await self._abort()
            raise

    async def aclose(self) -> None:
        """Cancel the run if it is still going, and wait for it to end."""
        self._closed = True
        if self._events is not None:
            await self._abort()

    def _start(self) -> None:
        check_called_from_trio("execute_streaming()", started=True)
        buffer = EventBuffer(self._run.buffer_size)
        self._events = EventStream(buffer, self._run, deliver_interrupt=True)
        self._token = trio.lowlevel.current_trio_token()
        # The task must not refer to this iterator, or dropping the iterator would not
        # collect it and __del__ could never cancel the run.
        trio.lowlevel.spawn_system_task(
            _execute_in_scope,
            self._run,
            buffer,
            self._cancel_scope,
            self._done,
            name=f"runnable_trio run {self.run_id}",
            context=contextvars.copy_context(),
        )

    async def _abort(self) -> None:
        """Cancel the run and wait for it; a KeyboardInterrupt it ended with wins."""
        self._cancel_scope.cancel()
        await self._run.wait_cancelled()
        with trio.CancelScope(shield=True):
            await self._done.wait()
        if self._run.event_log is not None:
            await self._run.event_log.close(self._run.run_log)
        assert self._events is not None
        interrupt = self._events.take_interrupt()
        if interrupt is not None:
            # As out of stream()'s block: an interrupt raised by a task while the consumer
            # was leaving still reaches it.
            raise_without_context(interrupt)

    def __del__(self) -> None:
        # Dropped without aclose() (``break`` out of ``async for``): cancel the run from the
        # Trio thread; nobody is left to wait for it.
        if self._token is None:
            return
        with contextlib.suppress(trio.RunFinishedError):
            if not self._done.is_set():
                self._token.run_sync_soon(self._cancel_scope.cancel)
                self._token.run_sync_soon(_watch_cancelled, self._run)
            if self._run.event_log is not None and not self._run.event_log.closed:
                self._token.run_sync_soon(_close_event_log, self._run, self._done)


def innermost(paths: set[str]) -> list[str]:
    """The paths in ``paths`` with no other path of ``paths`` inside them, sorted."""
    return sorted(p for p in paths if not any(q.startswith(p + ".") for q in paths))


def _watch_cancelled(run: PreparedRun) -> None:
    # A dropped iterator leaves nobody waiting for its run: a system task warns instead if
    # the run does not end; it is cancelled with the Trio run, so it never holds it up.
    if not run.finished:
        with contextlib.suppress(RuntimeError):
            trio.lowlevel.spawn_system_task(
                functools.partial(run.wait_cancelled, shield=False),
                name=f"runnable_trio cancelled run {run.run_id}",
            )


def _close_event_log(run: PreparedRun, done: trio.Event) -> None:
    async def close(log: EventLogSink) -> None:
        await done.wait()
        await log.close(run.run_log)

    # Too late once Trio is shutting down (no new system task): the process is ending.
    if run.event_log is not None and not run.event_log.closed:
        with contextlib.suppress(RuntimeError):
            trio.lowlevel.spawn_system_task(close, run.event_log, name="runnable_trio event log")


async def _execute_in_scope(
    run: PreparedRun,
    buffer: EventBuffer,
    cancel_scope: trio.CancelScope,
    done: trio.Event,
) -> None:
    try:
        with cancel_scope:
            await run.execute(buffer)
    except BaseException:
        # A system task must raise nothing but Cancelled, or Trio ends the whole run with
        # TrioInternalError: a KeyboardInterrupt or SystemExit of the run's own goes to the
        # consumer instead (EventStream raises run.interrupt after the last event).
        if run.interrupt is None:
            raise
    finally:
        done.set()
