"""Events: the producer side of a run's stream, attribution and lifecycle events.

Every task of a run sends its events into the run's one bounded Trio memory channel through
the run's ``EventSink``: ``send_nowait`` while the channel has room, an awaited ``send``
otherwise, so a slow consumer slows every producer and memory stays bounded. A producer that
never waits for anything else still reaches a checkpoint (and notices a cancellation) each
time the channel fills. The one send side is shared by the concurrent tasks of a run rather
than cloned per branch (a clone per Map item costs memory at scale): the run closes it after
its nursery tree has ended, the one moment no producer can still be alive.

By default an event is the user's dict, unchanged. With attribution on, each event is a copy
carrying ``"_meta"``: ``{"run_id", "step", "ts"}`` here and ``"seq"`` (a gap-free per-run
sequence number) stamped by the consumer side, where the order is final; the framework's
lifecycle events (``run.started``, ``step.failed`` ...) are streamed too.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from typing import Any, Literal, NotRequired, TypedDict, final

import trio

__all__ = [
    "META_KEY",
    "Event",
    "EventReceive",
    "EventSend",
    "EventSink",
    "Lifecycle",
    "LifecycleEvent",
    "Meta",
    "RunCancelled",
    "RunCompleted",
    "RunFailed",
    "RunStarted",
    "StepCancelled",
    "StepCompleted",
    "StepFailed",
    "StepRetrying",
    "StepStarted",
    "open_event_channel",
]

META_KEY = "_meta"

Event = dict[str, Any]
EventSend = trio.MemorySendChannel[Event]
EventReceive = trio.MemoryReceiveChannel[Event]


def open_event_channel(buffer_size: int) -> tuple[EventSend, EventReceive]:
    """A run's hand-off: one send side for all its tasks, one receive side for its consumer."""
    # Not subscripted (``[Event]``): calling the typing alias adds ~15 % to every run's
    # channel; the return annotation says what it holds.
    return trio.open_memory_channel(buffer_size)


class Lifecycle(enum.StrEnum):
    """The ``type`` values of the framework's own events (equal to the plain strings)."""

    RUN_STARTED = "run.started"
    RUN_COMPLETED = "run.completed"
    RUN_FAILED = "run.failed"
    RUN_CANCELLED = "run.cancelled"
    STEP_STARTED = "step.started"
    STEP_COMPLETED = "step.completed"
    STEP_FAILED = "step.failed"
    STEP_RETRYING = "step.retrying"
    STEP_CANCELLED = "step.cancelled"


class Meta(TypedDict):
    """``event["_meta"]`` with ``attribution=True``."""

    run_id: str
    #: The dotted path of the step that produced the event (``""`` for a run's own events).
    step: str
    #: Wall-clock time the event was produced (``time.time()``).
    ts: float
    #: Gap-free sequence number per run, in the order the consumer receives the events.
    seq: int


# One TypedDict per lifecycle event. The field names are those of the run log and of SSE:
# ``error_type`` and ``error_message`` for a failure, ``step`` for the step that failed,
# ``kind`` for the kind of step (``task``, ``parallel``, ...).


class RunStarted(TypedDict):
    type: Literal["run.started"]
    pipeline: str
    _meta: NotRequired[Meta]


class RunCompleted(TypedDict):
    type: Literal["run.completed"]
    _meta: NotRequired[Meta]


class RunFailed(TypedDict):
    type: Literal["run.failed"]
    step: str | None
    error_type: str
    error_message: str
    _meta: NotRequired[Meta]


class RunCancelled(TypedDict):
    type: Literal["run.cancelled"]
    _meta: NotRequired[Meta]


class StepStarted(TypedDict):
    type: Literal["step.started"]
    kind: str
    _meta: NotRequired[Meta]


class StepCompleted(TypedDict):
    type: Literal["step.completed"]
    kind: str
    _meta: NotRequired[Meta]


class StepFailed(TypedDict):
    type: Literal["step.failed"]
    kind: str
    error_type: str
    error_message: str
    _meta: NotRequired[Meta]


class StepRetrying(TypedDict):
    type: Literal["step.retrying"]
    attempt: int
    error_type: str
    error_message: str
    delay: float
    _meta: NotRequired[Meta]


class StepCancelled(TypedDict):
    type: Literal["step.cancelled"]
    kind: str
    _meta: NotRequired[Meta]


#: Any lifecycle event (narrow it on ``event["type"]``).
LifecycleEvent = (
    RunStarted
    | RunCompleted
    | RunFailed
    | RunCancelled
    | StepStarted
    | StepCompleted
    | StepFailed
    | StepRetrying
    | StepCancelled
)


@final
class EventSink:
    """The producer side of one run's event channel."""

    __slots__ = ("_send", "attribution", "first_pending", "run_id", "taken")

    def __init__(self, send: EventSend, run_id: str, attribution: bool) -> None:
        self._send = send
        self.run_id = run_id
        self.attribution = attribution
        #: No streaming step of the run has ended yet (:meth:`hand_over`).
        self.first_pending = True
        #: How many times the consumer has waited again after taking events (counted by
        #: the consumer's side, ``_run.PreparedRun.event_taken``).
        self.taken = 0

    async def hand_over(self) -> None:
        """The run's first streaming step has ended: its consumer takes the events it
        handed over before the step's record is written.

        A generator that never waits hands its events over without a checkpoint, so
        without this the consumer would have its first event only once the step's end
        (its record, its journal line) is done. Up to two checkpoints, as Trio runs the
        tasks of a batch of its scheduler in either order: the consumer, made runnable by
        an event, runs in the next batch, and this task's next step after the second
        checkpoint is in the batch after it; the second is left out when the consumer has
        already taken its events and waits again. Once per run: scheduling rounds per step
        would cost the steps of a long run. For a step that runs alone (the caller's check):
        a sibling branch would go on meanwhile, where fail-fast would have cancelled it.
        Not cancellation points.
        """
        self.first_pending = False
        taken = self.taken
        await trio.lowlevel.cancel_shielded_checkpoint()
        if self.taken == taken:
            await trio.lowlevel.cancel_shielded_checkpoint()

    async def consumer_first(self) -> None:
        """Let a consumer woken by the run's last events take them before the run ends.

        Ending a run finishes its record, which a store may do in a worker thread,
        competing for the GIL with the consumer. Two checkpoints, as in :meth:`hand_over`;
        none where the consumer already waits for an event (it has taken every event).
        Not cancellation points: a pipeline that ended ends as it did.
        """
        if self._send.statistics().tasks_waiting_receive:
            return
        await trio.lowlevel.cancel_shielded_checkpoint()
        await trio.lowlevel.cancel_shielded_checkpoint()

    def unattributed_send(self) -> Callable[[Event], None] | None:
        """The channel's ``send_nowait``, when events go in as they are (no attribution).

        ``None`` with attribution on: each event then needs its ``_meta``, through ``emit``.
        A streaming task calls it for every event it can hand over at once, which spares its
        hot path a coroutine and a method call per event; it raises ``trio.WouldBlock`` when
        the buffer is full, and ``emit`` must then be awaited.
        """
        return None if self.attribution else self._send.send_nowait

    def emit_nowait(self, event: Event, step: str) -> Event | None:
        """Send one user event if the buffer has room; ``None`` once it is sent.

        When the buffer is full, nothing is sent and the event is returned as it would have
        gone (with attribution on, the copy carrying its ``_meta``). A streaming task with
        attribution on calls it for every event: unlike awaiting :meth:`emit`, it makes no
        coroutine per event.
        """
        if self.attribution:
            event = {**event, META_KEY: {"run_id": self.run_id, "step": step, "ts": time.time()}}
        try:
            self._send.send_nowait(event)
        except trio.WouldBlock:
            return event
        return None

    async def emit(self, event: Event, step: str) -> None:
        """Send one user event, waiting while the buffer is full.

        Cancellation: a checkpoint only if the buffer is full.
        """
        unsent = self.emit_nowait(event, step)
        if unsent is not None:
            await self._send.send(unsent)

    async def lifecycle(self, type_: Lifecycle, path: str, /, **fields: Any) -> None:
        """Send a framework event from step ``path``; does nothing unless attribution is on."""
        if self.attribution:
            await self.emit({"type": type_.value, **fields}, path)

    def lifecycle_nowait(self, type_: Lifecycle, path: str, /, **fields: Any) -> None:
        """Send a framework event if there is room; for paths that must not wait (cancellation)."""
        if self.attribution:
            # Dropped when the buffer is full: nobody may be listening any more.
            self.emit_nowait({"type": type_.value, **fields}, path)
