"""Awaiting asyncio work from Trio code, when both run on the same thread.

Two situations share this module: on an asyncio host, the Trio engine is a guest on the host
loop (``_guest.py``); on a Trio host, asyncio code runs on a trio-asyncio loop. Either way
there is one thread, Trio's run is active on it, and an asyncio loop is running on it, so a
Trio task can start an asyncio task on that loop and sleep until the task is done, and the
asyncio side can wake the Trio task with ``trio.lowlevel.reschedule`` (Trio allows sync-colored
calls from the host between guest ticks).

Cancellation crosses both ways. A Trio cancellation cancels the asyncio task and *waits for it
to end*, so the function's ``finally`` blocks have run before the step is over. An asyncio
``CancelledError`` that was not caused by the run (a task cancelled from outside, or the
function raising it) becomes :class:`HostCancelledError`, an ordinary exception that fails the
step: a ``CancelledError`` must never pass into Trio, where it would look like a crash, nor be
swallowed, which would leave the step waiting forever.

An async generator is driven by one asyncio task that runs ahead of the Trio side by at most
``capacity`` events (a :class:`~runnable._handoff.HandOff`), so a fast generator costs one
wake-up per burst of events rather than one asyncio task per event.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine
from inspect import CO_COROUTINE
from types import FunctionType
from typing import Any, TypeVar

import outcome
import trio

from runnable_trio import RunnableError

from ._handoff import AsyncioWaiter, HandOff, TrioWaiter

__all__ = ["HostCancelledError", "await_on_loop", "iterate_on_loop"]

T = TypeVar("T")

#: Events an asyncio generator may run ahead of the Trio task forwarding them.
GENERATOR_CAPACITY = 256


class HostCancelledError(RunnableError):
    """The asyncio task running a step's function was cancelled, but not by the run.

    It fails the step (with the ``CancelledError`` as ``__cause__``) instead of hanging it.
    """


class _Waiting:
    """A Trio task sleeping until an asyncio future is done (``_wait_until_done``).

    One object with slots instead of two closures and their cells: a Parallel or Map holds
    one per waiting branch, each an object the cyclic GC walks.
    """

    __slots__ = ("future", "raise_cancel", "task")

    def __init__(self, future: asyncio.Future[Any]) -> None:
        self.future = future
        self.task = task = trio.lowlevel.current_task()
        self.raise_cancel: Callable[[], Any] | None = None
        # Run in the sleeping task's own context (not entered while it sleeps): no copy of
        # the current one, as add_done_callback makes by default.
        future.add_done_callback(self.wake, context=task.context)

    def wake(self, _: asyncio.Future[Any]) -> None:
        trio.lowlevel.reschedule(self.task)

    def abort(self, raise_cancel: Callable[[], Any]) -> trio.lowlevel.Abort:
        self.raise_cancel = raise_cancel
        self.future.cancel()
        return trio.lowlevel.Abort.FAILED  # keep sleeping until the asyncio side has ended


async def _wait_until_done(future: asyncio.Future[Any]) -> None:
    """Sleep (in Trio) until ``future`` is done.

    Cancellation: the future is cancelled and still waited for; then ``trio.Cancelled`` is
    raised.
    """
    if future.done():
        await trio.lowlevel.checkpoint()
        return
    waiting = _Waiting(future)
    await trio.lowlevel.wait_task_rescheduled(waiting.abort)
    if waiting.raise_cancel is not None:
        waiting.raise_cancel()


async def _prefer_the_runs_cancellation() -> None:
    # The asyncio task was cancelled from outside. When the run is being cancelled too (at
    # loop shutdown, asyncio.run cancels every task, the run's and ours, at once), that is the
    # story: raise trio.Cancelled rather than fail the step.
    await trio.lowlevel.checkpoint_if_cancelled()


async def _call(function: Callable[..., Awaitable[T]], kwargs: dict[str, Any]) -> T:
    # Called inside the asyncio task, so the function itself starts in asyncio context.
    return await function(**kwargs)


async def await_on_loop(
    loop: asyncio.AbstractEventLoop,
    function: Callable[..., Awaitable[T]],
    kwargs: dict[str, Any],
) -> T:
    """Call ``function(**kwargs)`` in an asyncio task on ``loop``; return its result, from Trio.

    The call is made when this coroutine first runs, not when it is created: a caller may
    return this coroutine unawaited (one frame less per step) and a close before it starts
    leaves nothing unawaited behind. It is made inside the asyncio task, so whatever the
    function runs first runs in asyncio; an ``async def``'s call runs none of its code (the
    body starts in the task), so that call is made here, with no wrapper coroutine.

    Raises:
        HostCancelledError: the asyncio task was cancelled by something other than the run.
        Exception: whatever the function raised.

    Cancellation: the asyncio task is cancelled, waited for, and ``trio.Cancelled`` raised.
    """
    coroutine: Coroutine[Any, Any, T]
    if type(function) is FunctionType and function.__code__.co_flags & CO_COROUTINE:
        coroutine = function(**kwargs)
    else:  # a partial, a method, an object, a def marked as a coroutine function...
        coroutine = _call(function, kwargs)
    try:
        task = loop.create_task(coroutine)
    except BaseException:
        coroutine.close()  # never started: avoid "coroutine was never awaited"
        raise
    # _wait_until_done inline (a new task is never done yet): one frame less per step.
    waiting = _Waiting(task)
    await trio.lowlevel.wait_task_rescheduled(waiting.abort)
    if waiting.raise_cancel is not None:
        waiting.raise_cancel()
    try:
        return task.result()
    except asyncio.CancelledError as exc:
        await _prefer_the_runs_cancellation()
        raise HostCancelledError(
            "the asyncio task running this step's function was cancelled outside the run"
        ) from exc


class _Feeder:
    """One asyncio task driving an async generator; its items wait in a bounded hand-off.

    Attributes:
        items: the hand-off, read from Trio; closed once the generator has ended.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, generator: AsyncGenerator[Any, None], capacity: int
    ) -> None:
        self._generator = generator
        self.items: HandOff[Any] = HandOff(
            capacity, producer=AsyncioWaiter(loop), consumer=TrioWaiter()
        )
        self._end: outcome.Outcome[None] | None = None
        self._task = loop.create_task(self._drive())

    async def _drive(self) -> None:
        items = self.items
        try:
            async with contextlib.aclosing(self._generator) as generator:
                async for item in generator:
                    if items.put(item):
                        await items.wait_for_room()
                    if items.closed:  # by close(), even if the generator ignored the cancel
                        break
            self._end = outcome.Value(None)
        except asyncio.CancelledError as exc:
            if not items.closed:
                cancelled = HostCancelledError(
                    "the asyncio task running this step's generator was cancelled outside the run"
                )
                cancelled.__cause__ = exc
                self._end = outcome.Error(cancelled)
        except Exception as exc:
            self._end = outcome.Error(exc)
        finally:
            if self._end is None:
                self._end = outcome.Value(None)
            items.close()

    async def end(self) -> None:
        """Once ``items`` is closed by the driver: return if the generator finished, else raise
        what ended it.
        """
        end = self._end
        assert end is not None  # set before the driver closes the hand-off
        if isinstance(end, outcome.Error) and isinstance(end.error, HostCancelledError):
            await _prefer_the_runs_cancellation()
        end.unwrap()

    async def close(self) -> None:
        """Stop the generator (its ``finally`` runs on its loop) and wait until it has.

        Cancellation: the generator is still waited for; then ``trio.Cancelled`` is raised.
        """
        if self._task.done():
            return
        self.items.close()
        self._task.cancel()
        await _wait_until_done(self._task)


async def iterate_on_loop(
    loop: asyncio.AbstractEventLoop,
    generator: AsyncGenerator[Any, None],
    capacity: int = GENERATOR_CAPACITY,
) -> AsyncGenerator[Any, None]:
    """Iterate, from Trio, over an asyncio async generator running on ``loop``.

    Raises:
        HostCancelledError: the generator's asyncio task was cancelled outside the run.
        Exception: whatever the generator raised.

    Cancellation: waiting for the next item raises ``trio.Cancelled`` (the generator keeps
    its place); closing this generator (``aclose()``) cancels the asyncio one and waits for its
    ``finally`` blocks to have run.
    """
    feeder = _Feeder(loop, generator, capacity)
    items = feeder.items
    try:
        while True:
            if items.items:  # the usual case: no await at all
                yield items.take()
            elif items.closed:
                await feeder.end()
                return
            else:
                await items.wait_for_item()
    finally:
        await feeder.close()
