"""The bounded buffer between a run's tasks and its consumer.

A Trio memory channel would do, and did; this is the same contract with less work per event.
Every task of a run puts events in (there is no per-task clone to close: the run closes the
buffer once its nursery tree has ended) and one consumer side takes them out. While there is
room, ``put`` appends without a trip through the scheduler; while events are buffered,
``get`` takes one after a cancellation check only. Both wait on a ``trio.lowlevel.ParkingLot``
otherwise, so a full buffer makes producers wait (backpressure, bounded memory) and an empty
one makes the consumer wait, and both waits are ordinary, cancellable checkpoints.

What a memory channel does besides, and this does not need: statistics, clones, closing the
receiving side (a run's consumer never leaves without cancelling the run), per-call protection
against ``KeyboardInterrupt`` (the state is a deque and a flag; an interrupted call leaves it
consistent).
"""

from __future__ import annotations

from collections import deque
from typing import Any

import trio

__all__ = ["Event", "EventBuffer"]

Event = dict[str, Any]


class EventBuffer:
    """A FIFO of events holding at most ``capacity`` of them.

    Args:
        capacity: how many events may wait for the consumer (>= 1).
    """

    __slots__ = ("_capacity", "_closed", "_consumers", "_items", "_producers")

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._items: deque[Event] = deque()
        self._producers = trio.lowlevel.ParkingLot()  # waiting for room
        self._consumers = trio.lowlevel.ParkingLot()  # waiting for an event
        self._closed = False  # no more events will come

    def __len__(self) -> int:
        return len(self._items)

    def put_nowait(self, event: Event) -> bool:
        """Append ``event`` if there is room; return whether it was appended."""
        if len(self._items) >= self._capacity:
            return False
        self._items.append(event)
        if self._consumers:
            self._consumers.unpark()
        return True

    async def put(self, event: Event) -> None:
        """Append ``event``, waiting while the buffer is full.

        Cancellation: a checkpoint only when the buffer is full; the event is then not
        appended.
        """
        while not self.put_nowait(event):
            await self._producers.park()

    async def get(self) -> Event:
        """The oldest event, waiting while there is none.

        Raises:
            trio.EndOfChannel: the buffer is closed and empty.

        Cancellation: always checked; a checkpoint when the buffer is empty.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        items = self._items
        while not items:
            if self._closed:
                raise trio.EndOfChannel
            await self._consumers.park()
        event = items.popleft()
        if self._producers:
            self._producers.unpark()
        return event

    def close(self) -> None:
        """No more events: once the buffered ones are taken, ``get`` raises ``EndOfChannel``."""
        self._closed = True
        self._consumers.unpark_all()
