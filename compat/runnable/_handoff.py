"""The bounded hand-off between a Trio task and an asyncio task on one thread.

Both bridges move items between the two worlds through the same protocol: an asyncio
generator's items go to the Trio task forwarding them (``_aio``), a run's events go from its
Trio task to the asyncio consumer (``_guest``). :class:`HandOff` is that protocol, once: a
deque of at most ``capacity`` items; the producer parks when it is full and is woken once the
consumer has freed half of it (one wake-up per burst, not per item); the consumer parks when
it is empty and is woken by the next item; :meth:`HandOff.close` ends it and wakes whichever
of the two is parked. The producer may also wait until the consumer has taken every item
(:meth:`HandOff.wait_until_taken`: an event log records only what the consumer received).

How a side parks is its world's business, so each side gets a waiter: :class:`TrioWaiter`
(``wait_task_rescheduled`` / ``reschedule``) or :class:`AsyncioWaiter` (a future of the loop).
Only one thread touches a hand-off: a guest run's ticks and its host loop's callbacks take
turns, and Trio allows the host to call ``reschedule`` between ticks; on a trio-asyncio loop
the asyncio callbacks run inside the Trio run.

A parked side may be cancelled in its own world. Its waiter forgets it (a Trio task in the
abort callback, at once; an asyncio task when it resumes, its cancelled future skipped until
then), so no wake-up reaches a task that is no longer parked, and the hand-off's items and state
are untouched.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any, Generic, Protocol, TypeVar

import trio

__all__ = ["AsyncioWaiter", "HandOff", "TrioWaiter", "Waiter"]

T = TypeVar("T")


class Waiter(Protocol):
    """One side's way to park and be woken: ``parked`` is not ``None`` while it is parked."""

    @property
    def parked(self) -> object | None: ...

    async def wait(self) -> None:
        """Park until :meth:`wake` (or the caller's own cancellation)."""

    def wake(self) -> None:
        """Wake the parked task, if any (sync: callable from the other world)."""


class TrioWaiter:
    """A Trio task parked with ``wait_task_rescheduled``."""

    __slots__ = ("parked",)

    def __init__(self) -> None:
        self.parked: trio.lowlevel.Task | None = None

    async def wait(self) -> None:
        """Cancellation: forgets the task at once (no wake-up can reach it any more)."""
        self.parked = trio.lowlevel.current_task()

        def abort(_: Any) -> trio.lowlevel.Abort:
            self.parked = None
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)

    def wake(self) -> None:
        task = self.parked
        if task is not None:
            self.parked = None
            trio.lowlevel.reschedule(task)


class AsyncioWaiter:
    """An asyncio task parked on a future of ``loop``."""

    __slots__ = ("_loop", "parked")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.parked: asyncio.Future[None] | None = None

    async def wait(self) -> None:
        """Cancellation: the future is cancelled (so a wake-up skips it) and then forgotten."""
        future = self.parked = self._loop.create_future()
        try:
            await future
        finally:
            if self.parked is future:
                self.parked = None

    def wake(self) -> None:
        future = self.parked
        if future is not None:
            self.parked = None
            if not future.done():  # cancelled, its task not yet resumed
                future.set_result(None)


class HandOff(Generic[T]):
    """At most ``capacity`` items from one producer to one consumer, each parking in its world.

    The producer calls :meth:`put` and, when it says the hand-off is full, awaits
    :meth:`wait_for_room`; the consumer calls :meth:`take` while ``items`` is not empty and
    otherwise awaits :meth:`wait_for_item`. Either side may :meth:`close` it.

    Attributes:
        items: the waiting items, oldest first (read it; change it only through the methods).
        closed: set by :meth:`close`; the producer stops once it sees it.
    """

    __slots__ = ("_consumer", "_half", "_producer", "_wake_at", "capacity", "closed", "items")

    def __init__(self, capacity: int, *, producer: Waiter, consumer: Waiter) -> None:
        if capacity < 1:
            raise ValueError(f"a hand-off holds at least one item, not {capacity}")
        self.capacity = capacity
        self._half = capacity // 2
        # The producer, parked, is woken once this few items are left: half the room, or
        # none while it waits for every item to be taken.
        self._wake_at = self._half
        self.items: collections.deque[T] = collections.deque()
        self.closed = False
        self._producer = producer
        self._consumer = consumer

    def put(self, item: T) -> bool:
        """Append ``item`` and wake the consumer; ``True`` if the producer must now wait."""
        items = self.items
        items.append(item)
        if self._consumer.parked is not None:
            self._consumer.wake()
        return len(items) >= self.capacity

    async def wait_for_room(self) -> None:
        """Park the producer while the hand-off is full and open.

        Cancellation: raised in the producer's world; the hand-off is unchanged.
        """
        while len(self.items) >= self.capacity and not self.closed:
            await self._producer.wait()

    async def wait_until_taken(self) -> None:
        """Park the producer until the consumer has taken every item, or the hand-off closed.

        Cancellation: raised in the producer's world; the hand-off is unchanged.
        """
        try:
            while self.items and not self.closed:
                self._wake_at = 0
                await self._producer.wait()
        finally:
            self._wake_at = self._half

    def take(self) -> T:
        """The oldest item (there must be one); wakes the producer once half the room is free
        (or, in :meth:`wait_until_taken`, once there is no item left).
        """
        items = self.items
        item = items.popleft()
        if self._producer.parked is not None and len(items) <= self._wake_at:
            self._producer.wake()
        return item

    async def wait_for_item(self) -> None:
        """Park the consumer while the hand-off is empty and open.

        Cancellation: raised in the consumer's world; the hand-off is unchanged.
        """
        while not self.items and not self.closed:
            await self._consumer.wait()

    def discard(self) -> None:
        """Forget the waiting items: the consumer has left, so none of them will be taken."""
        self.items.clear()
        self._producer.wake()

    def close(self) -> None:
        """End the hand-off and wake both sides; the items already in it can still be taken."""
        self.closed = True
        self._producer.wake()
        self._consumer.wake()
