"""``StreamingRun``: what ``execute_streaming()`` returns, a plain async iterator.

It has no ``async with`` to own a nursery, so it runs the run in one Trio *system task* of its
own, started by the first ``__anext__``, so that no ``yield`` ever sits inside a nursery or
cancel scope (the trap trio's ``as_safe_channel`` exists to avoid). The run never outlives the
iterator: it is cancelled and awaited when ``__anext__`` is cancelled or raises (the run's
``EventStream``, whose ``__anext__`` is this iterator's, knows the task) and on ``aclose()``.

``__anext__`` is an instance slot, so ``async for`` calls what it holds with no frame of this
iterator's per event: a starter until the run has started, the stream's own bound
``__anext__`` from then on (``_exhausted`` once closed before it started). The starter holds
the iterator weakly: a bound method of its own would make a reference cycle, and a dropped
iterator would then wait for the cyclic GC rather than be freed at once.

``__del__`` is a safety net, not a way to end a run: it is what the reference's drop-in form
``async for ...: break`` (no ``aclose()``, nobody left to wait) falls back on. It cannot await,
so it has the Trio loop cancel the run soon and a system task do what ``aclose()`` would
(``EventStream._finish``: wait for the run, warn if it does not end, close its event log);
nobody waits for that task. Every caller inside this library (the command line, the testing
toolkit, SSE, compat) ends the iteration with ``aclose()``; code that must know the run has
ended does the same (``contextlib.aclosing``).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import weakref
from collections.abc import Awaitable
from typing import NoReturn, Protocol, final

import trio

from ._construct import NoPublicConstructor
from ._events import Event, EventSend, open_event_channel
from ._prepare import check_called_from_trio
from ._run import PreparedRun
from ._runlog import RunLog
from ._stream import EventStream

__all__ = ["StreamingRun", "start_streaming"]

logger = logging.getLogger("runnable_trio")


class _NextEvent(Protocol):
    # A callable held by an instance (not a method: nothing binds it to the iterator).
    def __call__(self) -> Awaitable[Event]: ...


@final
class StreamingRun(metaclass=NoPublicConstructor):
    """The iterator ``execute_streaming()`` returns: ``async for event in run:``.

    Safe to ``break`` out of: leaving the iteration in any way cancels the run.

    Attributes:
        run_id: the run's id (known before the run starts).
        run_log: the run's live record; final once the iteration has ended.
        last_seq: the sequence number of the last event received.
    """

    _built_by = "execute_streaming() (and runnable_trio.hosting.start_streaming)"

    __slots__ = (
        "__anext__",
        "__weakref__",
        "_cancel_scope",
        "_done",
        "_events",
        "_run",
        "_token",
    )

    #: What ``async for`` calls for the next event (see the module's docstring).
    __anext__: _NextEvent

    def __init__(self, run: PreparedRun) -> None:
        self._run = run
        self._events: EventStream | None = None
        self._cancel_scope = trio.CancelScope()
        self._done = trio.Event()
        self._token: trio.lowlevel.TrioToken | None = None
        self.__anext__ = functools.partial(_start_then_next, weakref.ref(self))

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

    async def aclose(self) -> None:
        """Cancel the run if it is still going, and wait for it to end."""
        if self._events is None:
            self.__anext__ = _exhausted  # never started: it never will
        else:
            await self._events._leave()

    def _start(self) -> EventStream:
        check_called_from_trio("execute_streaming()", started=True)
        send, receive = open_event_channel(self._run.buffer_size)
        events = self._events = EventStream._create(
            receive, self._run, self._cancel_scope, task_done=self._done
        )
        # The stream ends the run when its iteration fails (it knows the run's task).
        self.__anext__ = events.__anext__
        self._token = trio.lowlevel.current_trio_token()
        # The task must not refer to this iterator, or dropping the iterator would not
        # collect it and __del__ could never cancel the run.
        trio.lowlevel.spawn_system_task(
            _execute_in_scope,
            self._run,
            send,
            self._cancel_scope,
            self._done,
            name=f"runnable_trio run {self.run_id}",
            context=contextvars.copy_context(),
        )
        return events

    def __del__(self) -> None:
        # Dropped without aclose() (``break`` out of ``async for``): the safety net. It may
        # run anywhere (even in another thread), so it only hands the leaving to the Trio loop.
        if self._token is None or self._events is None or self._events._finished:
            return
        with contextlib.suppress(trio.RunFinishedError):  # the process is ending
            self._token.run_sync_soon(_leave_dropped, self._events, self._cancel_scope)


def start_streaming(run: PreparedRun) -> StreamingRun:
    """The iterator over the events of ``run``, which starts on its first ``__anext__``."""
    return StreamingRun._create(run)


def _start_then_next(iterator: weakref.ref[StreamingRun]) -> Awaitable[Event]:
    # The first ``__anext__``: whoever calls it holds the iterator, so it is alive.
    started = iterator()
    assert started is not None
    return started._start().__anext__()


async def _exhausted() -> NoReturn:
    raise StopAsyncIteration


def _leave_dropped(events: EventStream, cancel_scope: trio.CancelScope) -> None:
    # In the Trio loop, for a dropped iterator: cancel the run now, not once the task below
    # first runs, and leave the rest of aclose()'s work to that task. It is a system task:
    # the end of the Trio run waits for it (for the run, then the event log's last write), so
    # a dropped run's log is closed even when the Trio run ends right after the drop.
    cancel_scope.cancel()
    with contextlib.suppress(RuntimeError):  # Trio is shutting down: no new system task
        trio.lowlevel.spawn_system_task(
            _finish_dropped, events, name=f"runnable_trio dropped run {events.run_id}"
        )


async def _finish_dropped(events: EventStream) -> None:
    # A system task must raise nothing (Trio would crash the whole program): a log that
    # cannot be closed (its file removed, a full disk, the database gone) is reported.
    try:
        await events._finish()
    except Exception:
        logger.exception(
            "run %s (its iterator dropped without aclose()): the event log could not be closed",
            events.run_id,
        )


async def _execute_in_scope(
    run: PreparedRun,
    send: EventSend,
    cancel_scope: trio.CancelScope,
    done: trio.Event,
) -> None:
    try:
        with cancel_scope:
            await run.execute(send)
    except BaseException:
        # A system task must raise nothing but Cancelled, or Trio ends the whole run with
        # TrioInternalError: a KeyboardInterrupt or SystemExit of the run's own goes to the
        # consumer instead (EventStream raises run.interrupt after the last event).
        if run.interrupt is None:
            raise
    finally:
        done.set()
