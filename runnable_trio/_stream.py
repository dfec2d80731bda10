"""The consumer side of a run: ``EventStream``, and ``open_stream`` (``stream()``'s block).

``open_stream`` owns the run's nursery: the run is a child task, the caller's block is the
nursery body, so leaving the block cancels the run and waits for it to end.

Events reach the consumer through :class:`EventStream`, one hop from the producing task through
the run's bounded memory channel (``_events.open_event_channel``). While events are buffered,
``__anext__`` takes one with ``receive_nowait`` after a cancellation check only: no trip
through the scheduler. Only an empty channel makes it await ``receive`` (a checkpoint). That
is the hot path of a fast stream, paid once per event: the channel's ``receive_nowait`` is
bound once per stream and the check looked up once per process, and a *plain* stream (no
sequence numbers to stamp, no event log to append to, the usual case) returns the event as
soon as it has it.

Every way a consumer is done with a run goes through :meth:`EventStream._finish`, the one place
a run's event log is closed: after the last event (normal end, failure, an interrupt), on
leaving ``open_stream``'s block (``break``, an exception, a cancellation, an interrupt raised
by a task), from ``StreamingRun.aclose()`` or a raising ``__anext__``, and from the safety net
of a dropped ``StreamingRun``. It cancels a run still going and waits for it first, so the
end line has the run's final status; after the events the consumer received, so none is
lost; and once, however many of those ways a consumer takes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import NoReturn, final

import trio

from ._construct import NoPublicConstructor
from ._errors import ExecutionFailedError
from ._events import META_KEY, Event, EventReceive, open_event_channel
from ._groups import raise_without_context, single_member
from ._prepare import check_called_from_trio
from ._run import PreparedRun
from ._runlog import RunLog

__all__ = ["EventStream", "open_stream"]

# Looked up once: two module attributes fewer for every event of every stream.
_checkpoint_if_cancelled = trio.lowlevel.checkpoint_if_cancelled


@final
class EventStream(metaclass=NoPublicConstructor):
    """The consumer side of a run: ``async for event in events``.

    After the last event, raises ``ExecutionFailedError`` if the run failed.

    Attributes:
        run_id: the run's id.
        run_log: the run's live record; final once the stream has ended.
        last_seq: the sequence number of the last event received (0 before the first).
    """

    _built_by = "stream() (and runnable_trio.hosting.open_stream)"

    __slots__ = (
        "_cancel_scope",
        "_deliver_interrupt",
        "_finished",
        "_first_seq",
        "_log",
        "_plain",
        "_receive",
        "_receive_nowait",
        "_receiving",
        "_run",
        "_stamp",
        "_task_done",
        "last_seq",
    )

    def __init__(
        self,
        receive: EventReceive,
        run: PreparedRun,
        cancel_scope: trio.CancelScope,
        *,
        task_done: trio.Event | None = None,
    ) -> None:
        self._receive = receive
        self._receive_nowait = receive.receive_nowait
        self._run = run
        self._cancel_scope = cancel_scope  # the scope the run's task runs in
        self._finished = False
        # Set once the run's task has ended, where that task is not a child of the consumer's
        # nursery (a system task): nothing else would wait for it, or give the consumer a
        # KeyboardInterrupt the run ended with.
        self._task_done = task_done
        self._deliver_interrupt = task_done is not None
        self._receiving = False
        self._stamp = run.attribution
        self._log = run.event_log
        # A retried run's events number on from those of its earlier attempts.
        self.last_seq = 0 if self._log is None else self._log.start_seq
        self._first_seq = self.last_seq
        # Nothing to do to an event but count it: no ``seq`` to stamp, no log line.
        self._plain = not self._stamp and self._log is None

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
            # Not a reason to end the run: the first consumer is still iterating.
            raise self._busy_error()
        try:
            # A cancelled consumer is told so even while events are buffered (receive_nowait
            # alone would not check), as from any Trio receive.
            await _checkpoint_if_cancelled()
            try:
                try:
                    event = self._receive_nowait()
                except trio.WouldBlock:
                    event = await self._wait()
            except trio.EndOfChannel as end:
                # Trio keeps the wakeup that raised it until this task next waits; its
                # tracebacks (its own, its context's) hold these frames, and so this stream,
                # the run and its whole record, which would then be freed in the next run.
                end.__traceback__ = end.__context__ = None
                await self._finish()
                self._end()
            self.last_seq += 1
            if self._plain:
                return event
            if self._stamp:
                event[META_KEY]["seq"] = self.last_seq
            if self._log is not None:
                self._log.append(self.last_seq, event)
                if self._log.full:
                    await self._log.flush()
            return event
        except (StopAsyncIteration, ExecutionFailedError):
            raise  # the run has ended
        except BaseException:
            # Out of open_stream's block, the nursery ends the run; a system task's run is
            # ended here, as the iteration cannot go on.
            if self._task_done is not None:
                await self._leave()
            raise

    async def _wait(self) -> Event:
        """The next event of an empty channel, waiting for it (a checkpoint)."""
        self._receiving = True
        try:
            if self.last_seq != self._first_seq:
                # Not before the first event: what the run keeps off that path may start.
                self._run.event_taken()
            if self._log is not None and self._log.pending:
                await self._log.flush()  # idle: write the event log's batch now
            return await self._receive.receive()
        finally:
            self._receiving = False

    def _busy_error(self) -> trio.BusyResourceError:
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

    async def _finish(self) -> None:
        """The consumer is done with the run: end it, then close its event log.

        A run still going is cancelled and waited for; then the event log, if any, gets
        what the consumer received and the end line (once: closing it is idempotent).
        Calling it again does nothing.

        Cancellation: shielded; it returns once the run has ended and its log is closed.
        """
        run = self._run
        if not run.finished:
            self._cancel_scope.cancel()
            await run.wait_cancelled()
        if self._log is not None:
            await self._log.close(run.run_log)
        self._finished = True

    async def _leave(self) -> None:
        """End a system task's run (:meth:`_finish`) and wait for its task to end.

        Raises:
            BaseException: a ``KeyboardInterrupt`` (or ``SystemExit``) the run ended with,
                as out of ``stream()``'s block: raised by a task while the consumer was
                leaving, it still reaches the consumer.

        Cancellation: shielded, as :meth:`_finish`.
        """
        assert self._task_done is not None, "a stream() run's nursery waits for its task"
        await self._finish()
        with trio.CancelScope(shield=True):
            await self._task_done.wait()
        interrupt = self._take_interrupt()
        if interrupt is not None:
            raise_without_context(interrupt)

    def _take_interrupt(self) -> BaseException | None:
        """The interrupt the run ended with, if it is this stream's to deliver; once."""
        interrupt = self._run.interrupt
        if interrupt is None or not self._deliver_interrupt:
            return None
        self._deliver_interrupt = False  # the iteration has ended
        return interrupt

    def _end(self) -> NoReturn:
        interrupt = self._take_interrupt()
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
    send, receive = open_event_channel(run.buffer_size)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run.execute, send, name=f"runnable_trio run {run.run_id}")
            events = EventStream._create(receive, run, nursery.cancel_scope)
            try:
                yield events
            finally:
                await events._finish()
    except BaseExceptionGroup as group:
        # The run task raises nothing but Cancelled, so what the group holds came from the
        # caller's block: give it back as it was raised.
        raise_without_context(single_member(group))  # see _groups: no cycle
