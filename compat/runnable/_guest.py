"""The Trio engine as a guest of a running asyncio loop.

Trio allows one run per thread, and a guest run (``trio.lowlevel.start_guest_run``) lives on
its host loop's callbacks: no second loop, and no thread runs the engine (Trio's guest mode only
parks its I/O wait in a helper thread while it is idle). So each asyncio
loop gets at most one guest run, shared by every stream started from that loop: started on first
use, it ends when its last stream ends (a later stream starts a new one). A keeper task on the
host loop owns the run's end: when ``asyncio.run`` shuts the loop down it cancels the keeper,
which cancels every stream still running and waits until the guest run has finished, so a loop
is never closed under a live Trio run.

Each stream is a task in the guest run's nursery. Its events cross to asyncio through a
bounded hand-off (:class:`~runnable._handoff.HandOff`) that only this thread touches: the Trio
side puts and wakes the consumer's future; the asyncio side takes and reschedules the Trio task
when half the room is free. A run's event log holds the events the asyncio consumer took, not
those the Trio task moved into the hand-off (``_received``). Trio's documented rule that the
host may call sync-colored Trio functions between guest ticks is what makes ``reschedule`` and
``CancelScope.cancel`` safe to call from asyncio code here.

Leaving a stream in any way (``break``, ``aclose()``, the consumer task cancelled, an
``asyncio.timeout``) cancels that stream's Trio task and, except for ``break`` (which leaves
nobody to wait), waits for it to end, so its run log is final when the consumer moves on.

A trio-asyncio loop is the one exception: its asyncio code already runs inside a Trio run, so a
stream started from it is a system task of that run, and no guest run is started.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import sys
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

import outcome
import trio

from runnable_trio import ExecutionFailedError
from runnable_trio.hosting import EventLogSink

from ._handoff import AsyncioWaiter, HandOff, TrioWaiter
from ._received import ReceivedLog

__all__ = ["HostStream", "host_loop"]

Event = dict[str, Any]


class LoggedRun(Protocol):
    """A run whose event log, if any, a stream keeps to what its consumer received."""

    event_log: EventLogSink | None


class NumberedEvents(Protocol):
    """Events that know their sequence numbers: a run's ``EventStream``, a ``Replay``."""

    last_seq: int

    def __aiter__(self) -> AsyncIterator[Event]: ...


EventSource = Callable[[], AbstractAsyncContextManager[NumberedEvents]]

# Set in each stream's Trio task, inherited by every task of its run.
_ASYNCIO_LOOP = contextvars.ContextVar[asyncio.AbstractEventLoop | None](
    "runnable_asyncio_loop", default=None
)

# The live guest run of each asyncio loop.
_GUESTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Guest] = weakref.WeakKeyDictionary()


def host_loop() -> asyncio.AbstractEventLoop | None:
    """In a Trio task of a run started from asyncio code: that code's loop, else ``None``."""
    return _ASYNCIO_LOOP.get()


class _Guest:
    """One guest run of Trio on ``loop`` and the count of streams using it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.accepting = True
        self.ready: asyncio.Future[None] = loop.create_future()
        self.done: asyncio.Future[None] = loop.create_future()
        self._cancel_scope = trio.CancelScope()
        self._nursery: trio.Nursery | None = None
        self._users = 0
        self._idle: trio.Event | None = None

    def start(self) -> None:
        try:
            trio.lowlevel.start_guest_run(
                self._main,
                run_sync_soon_threadsafe=self.loop.call_soon_threadsafe,
                run_sync_soon_not_threadsafe=self.loop.call_soon,
                done_callback=self._on_done,
                host_uses_signal_set_wakeup_fd=True,
            )
        except RuntimeError as exc:
            raise RuntimeError(
                "runnable: cannot start the Trio engine on this asyncio loop: a Trio run is "
                "already active in this thread (from Trio code, use runnable_trio directly)"
            ) from exc
        self.loop.create_task(self._keep(), name="runnable: Trio guest run keeper")

    async def _main(self) -> None:
        with self._cancel_scope:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                self.ready.set_result(None)
                while self._users:
                    self._idle = trio.Event()
                    await self._idle.wait()
                # Decided within this tick, so no stream can slip in between: a stream that
                # finds the guest closing waits for it to end and starts a new one.
                self.accepting = False

    def _on_done(self, result: outcome.Outcome[None]) -> None:
        self.accepting = False
        if _GUESTS.get(self.loop) is self:
            del _GUESTS[self.loop]
        if self.loop.is_closed():
            return
        if not self.ready.done():
            self.ready.cancel()
        if isinstance(result, outcome.Error):
            # Streams catch their own errors, so this is a fault in this module.
            self.loop.call_exception_handler(
                {"message": "runnable: the Trio guest run crashed", "exception": result.error}
            )
        self.done.set_result(None)

    async def _keep(self) -> None:
        try:
            await asyncio.shield(self.done)
        except asyncio.CancelledError:
            # The host loop is shutting down: end every stream and let the guest finish
            # before the loop closes.
            self.accepting = False
            self._cancel_scope.cancel()
            while not self.done.done():
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.shield(self.done)
            raise

    def acquire(self) -> None:
        self._users += 1

    def release(self) -> None:
        self._users -= 1
        if not self._users and self._idle is not None:
            self._idle.set()

    def spawn(self, function: Callable[[], Any], name: str) -> None:
        assert self._nursery is not None
        # Called from the asyncio consumer's task: start_soon gives the new Trio task a copy
        # of *its* contextvars, so the request's OpenTelemetry span is the run's parent.
        self._nursery.start_soon(function, name=name)


class _TrioAsyncioHost:
    """A trio-asyncio loop: Trio already runs this thread, so a stream is a system task."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def release(self) -> None:
        pass  # no guest run to end

    def spawn(self, function: Callable[[], Any], name: str) -> None:
        trio.lowlevel.spawn_system_task(function, name=name, context=contextvars.copy_context())


def _is_trio_asyncio_loop(loop: asyncio.AbstractEventLoop) -> bool:
    # Only look if trio-asyncio was imported: importing it changes asyncio for the process.
    trio_asyncio = sys.modules.get("trio_asyncio")
    return trio_asyncio is not None and isinstance(loop, trio_asyncio.BaseTrioEventLoop)


async def _join_host(loop: asyncio.AbstractEventLoop) -> _Guest | _TrioAsyncioHost:
    """Where a stream started from ``loop`` runs, with one more user counted."""
    if _is_trio_asyncio_loop(loop):
        return _TrioAsyncioHost(loop)
    while True:
        guest = _GUESTS.get(loop)
        if guest is None:
            guest = _Guest(loop)
            guest.start()
            _GUESTS[loop] = guest
        if guest.accepting:
            guest.acquire()
            try:
                await asyncio.shield(guest.ready)
            except BaseException:
                guest.release()
                raise
            return guest
        await asyncio.shield(guest.done)  # it is ending: wait, then start the next one


async def _join_despite_cancellation(loop: asyncio.AbstractEventLoop) -> _Guest | None:
    """The loop's guest run, waited for even if cancelled again; ``None`` if it is ending."""
    guest = _GUESTS.get(loop)
    if guest is None or not guest.accepting:
        return None  # the loop is shutting down: no run can start any more
    guest.acquire()
    while not guest.ready.done():
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(guest.ready)
    if guest.ready.cancelled():
        guest.release()
        return None
    return guest


class _Bridge:
    """The state one stream's Trio task and its asyncio consumer share.

    Kept apart from :class:`HostStream` so that the Trio task does not keep the consumer's
    object alive: dropping the iterator must be able to collect it and cancel the run.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        run_id: str,
        capacity: int,
        run: LoggedRun | None = None,
    ) -> None:
        self.loop = loop
        self.run_id = run_id
        # (sequence number in the run, event); the source numbers its events (``last_seq``).
        # Closed when the Trio task ends, with ``end`` set if it failed.
        self.events: HandOff[tuple[int, Event]] = HandOff(
            capacity, producer=TrioWaiter(), consumer=AsyncioWaiter(loop)
        )
        self.end: BaseException | None = None
        self.cancel_scope = trio.CancelScope()
        self.done: asyncio.Future[None] = loop.create_future()
        # In asyncio: the next event of ``events`` (there must be one). A run's event log is
        # appended as the consumer takes each event (``_received``); without one, this is the
        # hand-off's own take: one call per event, not two.
        self.take: Callable[[], tuple[int, Event]] = self.events.take
        if run is not None and run.event_log is not None:
            log = ReceivedLog(run.event_log, self.events, self.cancel_scope)
            run.event_log = log  # before the run starts: its stream logs through it
            self.take = log.take

    async def serve(self, host: _Guest | _TrioAsyncioHost, source: EventSource) -> None:
        """In Trio: move the source's events into ``events``; record how it ended."""
        _ASYNCIO_LOOP.set(self.loop)
        handoff = self.events
        try:
            with self.cancel_scope:
                async with source() as events:
                    async for event in events:
                        if handoff.put((events.last_seq, event)):
                            await handoff.wait_for_room()
        except Exception as exc:  # ExecutionFailedError, or a source that failed to open
            self.end = exc
        except (KeyboardInterrupt, SystemExit) as exc:
            # Raised by a task (a plain def in its thread, or an asyncio task of the host
            # loop): the run ended CANCELLED; the consumer gets the exception as itself. It
            # must not escape into the guest run, which would crash.
            self.end = exc
        except BaseException:
            # Cancelled from outside this stream (its own cancel scope catches the consumer's
            # cancellation): the host loop is shutting down.
            self.end = ExecutionFailedError(
                self.run_id, None, "the run was cancelled: its event loop is shutting down"
            )
            raise
        finally:
            handoff.close()
            host.release()
            if not self.done.done():
                self.done.set_result(None)

    async def wait_done(self) -> None:
        """Wait (in asyncio) until the Trio task has ended, whatever cancels the waiter."""
        while not self.done.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self.done)


class HostStream:
    """The asyncio consumer's iterator over events produced in the loop's Trio guest run.

    Args:
        source: called in Trio; an async context manager giving the events (it owns the
            run: leaving it cancels the run and waits for it).
        run_id: the run's id (named in the error raised if the loop shuts down mid-run).
        capacity: events that may wait for the consumer on the asyncio side.
        after: the sequence number before the first event (for ``last_seq``).
        run: the run ``source`` streams, if its event log is to hold exactly the events this
            consumer received (it is logged as they are taken, see ``_received``).

    Attributes:
        last_seq: the sequence number (in its run) of the last event returned.
    """

    def __init__(
        self,
        source: EventSource,
        run_id: str,
        capacity: int,
        *,
        after: int = 0,
        run: LoggedRun | None = None,
    ) -> None:
        self._source = source
        self._run_id = run_id
        self._capacity = max(2, capacity)
        self._run = run
        self._bridge: _Bridge | None = None
        self._closed = False
        self._waiting = False
        self.last_seq = after

    def __aiter__(self) -> HostStream:
        return self

    async def __anext__(self) -> Event:
        bridge = self._bridge
        # The usual case: no await at all. Not while a task waits: an event that has woken
        # it is that task's, and a second consumer is refused below.
        if bridge is not None and bridge.events.items and not self._waiting:
            self.last_seq, event = bridge.take()
            return event
        if self._waiting:
            raise RuntimeError("anext(): another task is already waiting on this stream")
        self._waiting = True
        try:
            return await self._wait_for_next()
        finally:
            self._waiting = False

    async def _wait_for_next(self) -> Event:
        bridge = self._bridge
        if bridge is None:
            if self._closed:
                raise StopAsyncIteration
            bridge = await self._start()
        events = bridge.events
        try:
            await events.wait_for_item()
        except BaseException:
            await self._abort(bridge)
            raise
        if events.items:
            self.last_seq, event = bridge.take()
            return event
        if bridge.end is not None:
            raise bridge.end
        raise StopAsyncIteration

    async def aclose(self) -> None:
        """Cancel the run if it is still going, and wait for it to end.

        Cancellation: the wait goes on until the run has ended; then the cancellation
        propagates.
        """
        self._closed = True
        if self._bridge is not None:
            await self._abort(self._bridge)

    async def _start(self) -> _Bridge:
        loop = asyncio.get_running_loop()
        try:
            host = await _join_host(loop)
        except asyncio.CancelledError:
            # Cancelled before the run started (the guest run was starting): start the run
            # anyway, already cancelled, so that it ends CANCELLED with its record written,
            # as it does on a Trio host.
            joined = await _join_despite_cancellation(loop)
            if joined is not None:
                bridge = self._spawn(loop, joined)
                bridge.cancel_scope.cancel()
                await bridge.wait_done()
            self._closed = True
            raise
        except BaseException:
            self._closed = True
            raise
        return self._spawn(loop, host)

    def _spawn(self, loop: asyncio.AbstractEventLoop, host: _Guest | _TrioAsyncioHost) -> _Bridge:
        bridge = _Bridge(loop, self._run_id, self._capacity, self._run)
        self._run = None  # its log is the bridge's now
        source = self._source  # the task must not refer to self (see _Bridge)
        host.spawn(lambda: bridge.serve(host, source), name=f"runnable run {self._run_id}")
        self._bridge = bridge
        return bridge

    @staticmethod
    async def _abort(bridge: _Bridge) -> None:
        # The consumer has left: what it has not taken, it never receives (nor is it logged).
        bridge.events.discard()
        if not bridge.events.closed:
            bridge.cancel_scope.cancel()
        await bridge.wait_done()

    def __del__(self) -> None:
        # Dropped without aclose() (``break`` out of ``async for``): cancel the run. This may
        # run in the garbage collector, in any thread: go through the loop.
        bridge = self._bridge
        if bridge is not None and not bridge.events.closed:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nothing runs
                bridge.loop.call_soon_threadsafe(bridge.cancel_scope.cancel)
