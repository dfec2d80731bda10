"""``EventChannel``: the bounded buffer between a run's tasks and its one consumer.

A Trio memory channel's semantics for what a run uses of one (many senders, one consumer, the
senders' side closes it), without what it does not (clones, a receive side to close,
statistics), for a fraction of the instructions per event: the consumer takes a buffered
item with the buffer's own ``popleft`` while no sender waits (:attr:`EventChannel.take`), so
that hot path runs no frame of ours.

As Trio's: ``send_nowait`` raises ``trio.WouldBlock`` on a full buffer, and an awaited
``send`` waits while it is full (backpressure); a sender that waits hands its item over when
the consumer makes room, first come first, and its ``send`` then returns: the item is in the
buffer from that moment, so a cancellation arriving later does not take it back, and a
``send`` cancelled before that moment sent nothing. ``receive_nowait`` raises
``trio.WouldBlock`` on an empty buffer and ``trio.EndOfChannel`` once the channel is closed
and drained; an awaited ``receive`` waits while it is empty. An item sent while the consumer
waits goes straight to it, not counted against the capacity: it is the consumer's from that
moment, whatever cancellation comes next, and a wait cancelled before it took none.
``send`` and ``receive`` are checkpoints, whether they wait or not.
The methods are protected from ``KeyboardInterrupt`` as Trio's are: an interrupt never leaves
the buffer and its waiting tasks out of step.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Generic, TypeVar, final

import trio
from outcome import Error, Value
from trio.lowlevel import Abort, RaiseCancelT, Task, enable_ki_protection

__all__ = ["EventChannel"]

T = TypeVar("T")


@final
class EventChannel(Generic[T]):
    """A bounded buffer of ``capacity`` (>= 1) items: many senders, one consumer."""

    __slots__ = ("_buffer", "_capacity", "_receiver", "_senders", "closed", "take")

    def __init__(self, capacity: int) -> None:
        self._buffer: deque[T] = deque()
        self._capacity = capacity
        #: Set by :meth:`close`: nothing more is sent.
        self.closed = False
        #: The consumer, while it waits in :meth:`receive` on an empty buffer.
        self._receiver: Task | None = None
        #: The tasks waiting in :meth:`send` on a full buffer, first come first, each with the
        #: item it sends: an item enters the buffer only as its task is woken.
        self._senders: OrderedDict[Task, T] = OrderedDict()
        #: The next buffered item; ``IndexError`` if there is none. The buffer's own
        #: ``popleft`` while no sender waits (no frame of ours for the consumer's hot path),
        #: :meth:`_take_admitting` while some do.
        self.take: Callable[[], T] = self._buffer.popleft

    def __len__(self) -> int:
        """The items buffered (a waiting sender's is not, until it is woken)."""
        return len(self._buffer)

    @property
    def receiver_waiting(self) -> bool:
        """Whether the consumer waits for an item (it has taken every buffered one)."""
        return self._receiver is not None

    @enable_ki_protection
    def send_nowait(self, item: T) -> None:
        """Buffer ``item``; ``trio.WouldBlock`` if the buffer is full."""
        if self.closed:
            raise trio.ClosedResourceError
        receiver = self._receiver
        if receiver is not None:
            self._receiver = None
            trio.lowlevel.reschedule(receiver, Value(item))
            return
        buffer = self._buffer
        if len(buffer) >= self._capacity:
            raise trio.WouldBlock
        buffer.append(item)

    @enable_ki_protection
    async def send(self, item: T) -> None:
        """Buffer ``item``, waiting while the buffer is full.

        Raises:
            trio.ClosedResourceError: the channel is closed, or was while this waited
                (``item`` was not sent).
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            self.send_nowait(item)
        except trio.WouldBlock:
            pass
        else:
            await trio.lowlevel.cancel_shielded_checkpoint()
            return
        task = trio.lowlevel.current_task()
        senders = self._senders
        senders[task] = item
        self.take = self._take_admitting

        def abort(_: RaiseCancelT) -> Abort:
            # Not woken yet, so its item is not in the buffer: the send sent nothing.
            del senders[task]
            if not senders:
                self.take = self._buffer.popleft
            return Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)

    @enable_ki_protection
    def _take_admitting(self) -> T:
        # Senders wait only on a full buffer: this makes room for the first of them.
        buffer = self._buffer
        item = buffer.popleft()
        senders = self._senders
        task, waiting = senders.popitem(last=False)
        buffer.append(waiting)
        if not senders:
            self.take = buffer.popleft
        trio.lowlevel.reschedule(task)
        return item

    @enable_ki_protection
    def receive_nowait(self) -> T:
        """The next item; ``trio.WouldBlock`` if none is buffered, ``trio.EndOfChannel`` if
        none is and the channel is closed."""
        try:
            return self.take()
        except IndexError:
            pass
        if self.closed:
            raise trio.EndOfChannel
        raise trio.WouldBlock

    @enable_ki_protection
    async def receive(self) -> T:
        """The next item, waiting while the buffer is empty.

        Raises:
            trio.EndOfChannel: the channel is closed and every item has been taken.
            trio.BusyResourceError: another task is already waiting in ``receive``.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            item = self.receive_nowait()
        except trio.WouldBlock:
            pass
        else:
            await trio.lowlevel.cancel_shielded_checkpoint()
            return item
        if self._receiver is not None:
            raise trio.BusyResourceError("another task is already receiving from this channel")
        self._receiver = trio.lowlevel.current_task()
        # The item sent, or close()'s EndOfChannel.
        sent: T = await trio.lowlevel.wait_task_rescheduled(self._abort_receive)
        return sent

    def _abort_receive(self, _: RaiseCancelT) -> Abort:
        self._receiver = None
        return Abort.SUCCEEDED

    @enable_ki_protection
    def close(self) -> None:
        """Send nothing more: the consumer takes what is buffered, then ``EndOfChannel``.

        A sender still waiting gets ``trio.ClosedResourceError`` (its item is not sent), as
        does every later send. Not a checkpoint; closing again does nothing.
        """
        if self.closed:
            return
        self.closed = True
        senders = self._senders
        for task in senders:
            trio.lowlevel.reschedule(task, Error(trio.ClosedResourceError()))
        senders.clear()
        self.take = self._buffer.popleft
        receiver = self._receiver
        if receiver is not None:  # it has taken every item
            self._receiver = None
            trio.lowlevel.reschedule(receiver, Error(trio.EndOfChannel()))
