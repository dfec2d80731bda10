"""Events: the producer side of a run's stream, attribution and lifecycle events.

Every task of a run puts its events into the run's one bounded ``EventBuffer`` through the
run's ``EventSink``: at once while the buffer has room, waiting otherwise, so a slow consumer
slows every producer and memory stays bounded. A producer that never waits for anything else
still reaches a checkpoint (and notices a cancellation) each time the buffer fills. The sink
is shared by the concurrent tasks of a run rather than cloned per branch: the run owns the
buffer and closes it after its nursery tree has ended, the one moment no producer can still
be alive.

By default an event is the user's dict, unchanged. With attribution on, each event is a copy
carrying ``"_meta"``: ``{"run_id", "step", "ts"}`` here and ``"seq"`` (a gap-free per-run
sequence number) stamped by the consumer side, where the order is final; the framework's
lifecycle events (``run.started``, ``step.failed`` ...) are streamed too.
"""

from __future__ import annotations

import time
from typing import Any

from ._buffer import Event, EventBuffer

__all__ = ["META_KEY", "Event", "EventSink", "Lifecycle"]

META_KEY = "_meta"


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
    STEP_CANCELLED = "step.cancelled"


class EventSink:
    """The producer side of one run's event buffer."""

    __slots__ = ("_buffer", "attribution", "run_id")

    def __init__(self, buffer: EventBuffer, run_id: str, attribution: bool) -> None:
        self._buffer = buffer
        self.run_id = run_id
        self.attribution = attribution

    def emit_nowait(self, event: Event, step: str) -> bool:
        """Put a user event in at once if it needs no attribution and there is room.

        Returns whether it did; if not, ``emit`` must be awaited. This spares the hot path
        of a streaming task a coroutine per event.
        """
        return not self.attribution and self._buffer.put_nowait(event)

    async def emit(self, event: Event, step: str) -> None:
        """Send one user event, waiting while the buffer is full.

        Cancellation: a checkpoint only if the buffer is full.
        """
        if self.attribution:
            event = {**event, META_KEY: {"run_id": self.run_id, "step": step, "ts": time.time()}}
        if not self._buffer.put_nowait(event):
            await self._buffer.put(event)

    async def lifecycle(self, type_: str, step: str, **fields: Any) -> None:
        """Send a framework event; does nothing unless attribution is on."""
        if self.attribution:
            await self.emit({"type": type_, **fields}, step)

    def lifecycle_nowait(self, type_: str, step: str, **fields: Any) -> None:
        """Send a framework event if there is room; for paths that must not wait (cancellation)."""
        if self.attribution:
            meta = {"run_id": self.run_id, "step": step, "ts": time.time()}
            # Dropped when the buffer is full: nobody may be listening any more.
            self._buffer.put_nowait({"type": type_, **fields, META_KEY: meta})
