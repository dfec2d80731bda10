"""A run's event log, kept to the events its asyncio consumer received.

runnable_trio's stream appends each event to the run's event log as its consumer receives it,
so that the log holds exactly the received events, then one end line. On an asyncio host that
consumer is the stream's Trio task (``_guest._Bridge.serve``), which runs ahead of the asyncio
consumer by up to a hand-off's worth of events: left to the Trio side, the log would hold events
that were still in the hand-off when the asyncio consumer left, as if received.

So the log the Trio side sees is :class:`ReceivedLog`, which wraps the run's own. Its
``append`` does nothing: the asyncio side appends each event as it takes it from the hand-off
(:meth:`ReceivedLog.take`, which only encodes the line, as the run's log does). What needs Trio
stays on the Trio side, and waits for the consumer first, so the rule of when lines are written
holds as on a Trio host: a batch when ``full``; when the stream is idle (the Trio side has
nothing to receive: it waits until the consumer has taken what the hand-off holds, then
writes); and at the end, once the consumer has taken every event or has left (whatever it had
not taken is then dropped from the hand-off: it is neither received nor logged). Both sides
run on one thread, taking turns, so no lock is needed.
"""

from __future__ import annotations

from typing import Any

import trio

from runnable_trio import RunLog
from runnable_trio.hosting import EventLogSink

from ._handoff import HandOff

__all__ = ["ReceivedLog"]


class ReceivedLog:
    """``log``, as the Trio side of a stream sees it; the asyncio side appends.

    Args:
        log: the run's event log.
        handoff: the stream's hand-off (``(seq, event)`` items) to the asyncio consumer.
        left: the stream's cancel scope: cancelled once the asyncio consumer has left.
    """

    __slots__ = ("_handoff", "_left", "_log")

    def __init__(
        self,
        log: EventLogSink,
        handoff: HandOff[tuple[int, dict[str, Any]]],
        left: trio.CancelScope,
    ) -> None:
        self._log = log
        self._handoff = handoff
        self._left = left

    def take(self) -> tuple[int, dict[str, Any]]:
        """The asyncio consumer's take: the hand-off's next item (there must be one), logged
        (encoded now, before the consumer may change the dict).
        """
        item = self._handoff.take()
        self._log.append(*item)
        return item

    @property
    def start_seq(self) -> int:
        return self._log.start_seq

    def start(self) -> None:
        self._log.start()

    @property
    def closed(self) -> bool:
        return self._log.closed

    @property
    def pending(self) -> bool:
        # Events in the hand-off are lines to come: the idle stream waits for them (flush).
        return self._log.pending or bool(self._handoff.items)

    @property
    def full(self) -> bool:
        return self._log.full

    def append(self, seq: int, event: dict[str, Any]) -> None:
        pass  # received by the Trio side only: logged once the asyncio side takes it

    async def flush(self) -> None:
        """Write the lines of the events taken (a batch, or once the consumer took them all).

        Cancellation: the lines not written yet stay queued for :meth:`close`.
        """
        if not self._log.full:
            await self._handoff.wait_until_taken()  # the stream is idle: nothing is delayed
        await self._log.flush()

    async def close(self, run_log: RunLog) -> None:
        """Close the log once the consumer has taken every event, or has left.

        Cancellation: the log is closed with the events taken so far; the events left in the
        hand-off are dropped (nobody will receive them); then ``trio.Cancelled`` is raised.
        """
        try:
            if not self._left.cancel_called and not self._log.closed:
                await self._handoff.wait_until_taken()
        finally:
            self._handoff.discard()
            await self._log.close(run_log)
