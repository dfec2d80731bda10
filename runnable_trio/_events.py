"""Events: the producer side of a run's stream, attribution and lifecycle events.

Every task of a run sends into one bounded memory channel through the run's ``EventSink``.
Sending takes a fast path while the buffer has room (``send_nowait``, after a cancellation
check) and waits otherwise, so a slow consumer slows every producer and memory stays bounded.
The consumer side (``EventStream`` in ``_stream.py``) mirrors it. The sink is shared by the
concurrent tasks of a run rather than cloned per branch: the run owns it and closes it after
its nursery tree has ended, which is the one moment no producer can still be alive.

By default an event is the user's dict, unchanged. With attribution on, each event is a copy
carrying ``"_meta"``: ``{"run_id", "step", "ts"}`` here and ``"seq"`` (a gap-free per-run
sequence number) stamped by the consumer side, where the order is final; the framework's
lifecycle events (``run.started``, ``step.failed`` ...) are streamed too.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import trio

__all__ = ["META_KEY", "EventSink", "Lifecycle"]

META_KEY = "_meta"

Event = dict[str, Any]


class Lifecycle:
    """The ``type`` values of the framework's own events."""

    RUN_STARTED = "run.started"
    RUN_COMPLETED = "run.completed"
    RUN_FAILED = "run.failed"
    RUN_CANCELLED = "run.cancelled"
    STEP_STARTED = "step.started"
    STEP_COMPLETED = "step.completed"
    STEP_FAILED = "step.failed"
    STEP_RETRYING = "step.retrying"


class EventSink:
    """The producer side of one run's event channel."""

    __slots__ = ("_send", "attribution", "run_id")

    def __init__(self, send: trio.MemorySendChannel[Event], run_id: str, attribution: bool) -> None:
        self._send = send
        self.run_id = run_id
        self.attribution = attribution

    async def emit(self, event: Event, step: str) -> None:
        """Send one user event, waiting while the buffer is full.

        Cancellation: a checkpoint only if cancelled or if the buffer is full.
        """
        if self.attribution:
            event = {**event, META_KEY: {"run_id": self.run_id, "step": step, "ts": time.time()}}
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            self._send.send_nowait(event)
        except trio.WouldBlock:
            await self._send.send(event)

    async def lifecycle(self, type_: str, step: str, **fields: Any) -> None:
        """Send a framework event; does nothing unless attribution is on."""
        if self.attribution:
            await self.emit({"type": type_, **fields}, step)

    def lifecycle_nowait(self, type_: str, step: str, **fields: Any) -> None:
        """Send a framework event if there is room; for paths that must not wait (cancellation)."""
        if self.attribution:
            meta = {"run_id": self.run_id, "step": step, "ts": time.time()}
            # Nobody may be listening any more, or the consumer may be far behind.
            with contextlib.suppress(
                trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError
            ):
                self._send.send_nowait({"type": type_, **fields, META_KEY: meta})
