"""Leaving a stream every way, and checking that nothing of the run is left behind.

:func:`leave` consumes a run's events, hands each to the test's ``on_event`` callback, and
after the event at index ``at`` (0: the first event) leaves the way it is told:

- ``break`` out of the ``async for`` (the iterator dropped without ``aclose()``);
- ``aclose()`` on the iterator;
- an exception raised in the body (it must reach the test unchanged);
- ``move_on_after``: the deadline of a scope around the loop passes;
- ``cancel``: the body cancels the scope around the loop;
- ``external_cancel``: another task cancels the consumer's scope;
- ``sse_disconnect``: a web client goes away while ``SSEStream`` frames are being sent (the
  response task is cancelled and the body iterator dropped, as Starlette does);
- ``end``: every event consumed (the baseline).

Then, still inside the run's Trio event loop, it checks: no task of the run is alive, every
record of the run (in memory, and in the run-log store) is final, and every call of a task
function that started has ended (so its ``finally`` blocks ran). A failed check raises
``AssertionError`` naming the way, the index and what was left.
"""

from __future__ import annotations

import enum
import gc
import random
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import trio

from .._config import load_configuration
from .._errors import ExecutionFailedError
from .._groups import raise_without_context, single_member
from .._runlog import RunLog
from .._sse import SSEStream
from .._stores import store_from_configuration
from ._faults import current_plan, tracking
from ._results import Surface, not_final, run_to_end
from ._tracker import CallTracker

if TYPE_CHECKING:
    from .._pipeline import AsyncPipeline
    from .._store import RunLogStore

__all__ = ["Left", "Way", "leave", "leave_every_way", "run_tasks", "ways_for"]

#: The name the library gives a run's own task (both surfaces): ``"runnable_trio run <id>"``.
RUN_TASK_PREFIX = "runnable_trio run "


class Way(enum.Enum):
    """A way of leaving a run's stream."""

    BREAK = "break"
    ACLOSE = "aclose"
    RAISE = "raise"
    MOVE_ON_AFTER = "move_on_after"
    CANCEL = "cancel"
    EXTERNAL_CANCEL = "external_cancel"
    SSE_DISCONNECT = "sse_disconnect"
    END = "end"


#: The ways each surface can be left (``stream()``'s events have no ``aclose()``; an SSE body
#: is an iterator that is dropped, which only ``execute_streaming()`` turns into a cancel).
SURFACE_WAYS: Mapping[str, tuple[Way, ...]] = {
    "execute_streaming": tuple(Way),
    "stream": tuple(w for w in Way if w not in (Way.ACLOSE, Way.SSE_DISCONNECT)),
}


def ways_for(surfaces: Iterable[str] = ("execute_streaming", "stream")) -> list[tuple[str, Way]]:
    """Every (surface, way) pair of ``surfaces``."""
    pairs = []
    for surface in surfaces:
        if surface not in SURFACE_WAYS:
            raise ValueError(f"surface must be 'execute_streaming' or 'stream' (got {surface!r})")
        pairs += [(surface, way) for way in SURFACE_WAYS[surface]]
    return pairs


class LeftByTheBody(Exception):
    """The exception the ``raise`` way throws from the loop body."""


@attrs.define
class Left:
    """How one run was left.

    Attributes:
        events: the events received (for ``sse_disconnect``, those whose frames were sent).
        frames: the SSE frames sent (``sse_disconnect`` only).
        early: whether the run was left before its end (False when it had ended first:
            it had no event at index ``at``).
        error: the ``ExecutionFailedError`` of a run that failed before it was left.
    """

    surface: str
    way: Way
    at: int
    run_log: RunLog
    events: list[dict[str, Any]] = attrs.field(factory=list)
    frames: list[str] = attrs.field(factory=list)
    early: bool = False
    error: ExecutionFailedError | None = None


OnEvent = Callable[[dict[str, Any]], Awaitable[None] | None]


async def _call(on_event: OnEvent | None, event: dict[str, Any]) -> None:
    if on_event is not None:
        result = on_event(event)
        if result is not None:
            await result


def run_tasks(run_id: str) -> list[str]:
    """The names of the live tasks of run ``run_id``: its own task and everything under it."""
    found: list[str] = []

    def visit(task: trio.lowlevel.Task, inside: bool) -> None:
        inside = inside or task.name == RUN_TASK_PREFIX + run_id
        if inside:
            found.append(task.name)
        for nursery in task.child_nurseries:
            for child in nursery.child_tasks:
                visit(child, inside)

    root = trio.lowlevel.current_root_task()
    if root is not None:
        visit(root, False)
    return found


def _stored(run_id: str, kwargs: Mapping[str, Any]) -> tuple[str, RunLog | None]:
    """The run's record as its store holds it (``store=`` or the configuration's store)."""
    store: RunLogStore | None = kwargs.get("store")
    if store is None:
        configuration = load_configuration(kwargs.get("configuration_file", ""))
        store = store_from_configuration(configuration)
    try:
        return type(store).__name__, store.load(run_id)
    except KeyError:
        return type(store).__name__, None


def check_left(left: Left, tracker: CallTracker, kwargs: Mapping[str, Any]) -> None:
    """The checks after a run was left; ``AssertionError`` listing every problem."""
    run_id = left.run_log.run_id
    problems = []
    tasks = run_tasks(run_id)
    if tasks:
        problems.append("tasks of the run still alive: " + ", ".join(tasks))
    left_open = tracker.still_open
    if left_open:
        problems.append("task functions whose call has not ended: " + ", ".join(left_open))
    processing = not_final(left.run_log)
    if processing:
        problems.append("records still PROCESSING in memory: " + ", ".join(processing))
    where, stored = _stored(run_id, kwargs)
    if stored is None:
        problems.append(f"no record of the run in its {where}")
    elif stored is not None:
        processing = not_final(stored)
        if processing:
            problems.append(f"records still PROCESSING in the {where}: " + ", ".join(processing))
    if problems:
        plan = current_plan()
        injected = f"; faults injected: {plan.injected}" if plan and plan.injected else ""
        raise AssertionError(
            f"leaving run {run_id} by {left.way.value} on {left.surface}() after event "
            f"{left.at} ({len(left.events)} received, run {left.run_log.status}){injected}:\n  "
            + "\n  ".join(problems)
        )


async def leave(
    pipeline: AsyncPipeline,
    way: Way | str,
    at: int = 0,
    *,
    surface: Surface = "execute_streaming",
    on_event: OnEvent | None = None,
    **kwargs: Any,
) -> Left:
    """Run ``pipeline``, leave its stream by ``way`` after the event at index ``at``, check.

    Args:
        on_event: called with each event received (may be async): the test's own body.
        kwargs: passed to ``execute_streaming()`` / ``stream()``.

    Raises:
        AssertionError: something of the run was left behind (see the module docstring).
    """
    way = Way(way)
    if way not in SURFACE_WAYS.get(surface, ()):
        raise ValueError(f"{surface}() cannot be left by {way.value!r}")
    if isinstance(at, bool) or not isinstance(at, int) or at < 0:
        raise ValueError(f"at must be an event index >= 0 (got {at!r})")
    tracker = CallTracker()
    with tracking(tracker):
        if surface == "stream":
            left = await _leave_stream(pipeline, way, at, on_event, kwargs)
        else:
            left = await _leave_iterator(pipeline, way, at, on_event, kwargs)
    check_left(left, tracker, kwargs)
    return left


async def _consume(
    events: Any, left: Left, on_event: OnEvent | None, scope: trio.CancelScope, go: trio.Event
) -> None:
    """The loop body shared by the ways, leaving after event ``left.at``."""
    way = left.way
    try:
        async for event in events:
            left.events.append(event)
            await _call(on_event, event)
            if len(left.events) <= left.at or way is Way.END:
                continue
            left.early = True
            if way is Way.BREAK:
                break
            if way is Way.RAISE:
                raise LeftByTheBody(f"left by the body after event {left.at}")
            if way is Way.MOVE_ON_AFTER:
                scope.deadline = trio.current_time()
            elif way is Way.CANCEL:
                scope.cancel()
            elif way is Way.EXTERNAL_CANCEL:
                go.set()
            elif way is Way.ACLOSE:
                await events.aclose()
                break
    except ExecutionFailedError as exc:
        left.error = exc


async def _leave_stream(
    pipeline: AsyncPipeline,
    way: Way,
    at: int,
    on_event: OnEvent | None,
    kwargs: dict[str, Any],
) -> Left:
    left = Left("stream", way, at, RunLog(run_id=""))

    async def body(scope: trio.CancelScope, go: trio.Event) -> None:
        async with pipeline.stream(**kwargs) as events:
            left.run_log = events.run_log
            await _consume(events, left, on_event, scope, go)

    await _with_scope(body, left)
    return left


async def _leave_iterator(
    pipeline: AsyncPipeline,
    way: Way,
    at: int,
    on_event: OnEvent | None,
    kwargs: dict[str, Any],
) -> Left:
    run = pipeline.execute_streaming(**kwargs)
    left = Left("execute_streaming", way, at, run.run_log)
    # The run's end, without keeping the iterator alive (dropping it is what cancels it).
    done: trio.Event = run._done

    if way is Way.SSE_DISCONNECT:
        sse = SSEStream(run)
        del run
        with trio.CancelScope() as scope:
            async for frame in sse:
                left.frames.append(frame)
                if len(left.frames) > at:
                    left.early = True
                    scope.cancel()  # the client is gone: the server cancels the response
        del sse
        await done.wait()
        return left

    holder = [run]  # the body's only reference, dropped below

    async def body(scope: trio.CancelScope, go: trio.Event) -> None:
        await _consume(holder[0], left, on_event, scope, go)

    await _with_scope(body, left)
    holder.clear()
    # Like most callers, no aclose() after leaving (the aclose way has called it): dropping
    # the iterator must cancel the run.
    collected = weakref.ref(run)
    del run
    if collected() is not None and not done.is_set():
        gc.collect()
        if collected() is not None and not done.is_set():
            raise AssertionError(
                f"the iterator of run {left.run_log.run_id} is still referenced after it was "
                f"left by {way.value}, so it cannot be collected and its run is not cancelled"
            )
    await done.wait()
    return left


async def _with_scope(
    body: Callable[[trio.CancelScope, trio.Event], Awaitable[None]], left: Left
) -> None:
    go = trio.Event()
    try:
        await _in_nursery(body, left, go)
    except BaseExceptionGroup as group:  # the canceller's nursery: give the body's error back
        raise_without_context(single_member(group))


async def _in_nursery(
    body: Callable[[trio.CancelScope, trio.Event], Awaitable[None]], left: Left, go: trio.Event
) -> None:
    async with trio.open_nursery() as nursery:
        with trio.CancelScope() as scope:
            if left.way is Way.EXTERNAL_CANCEL:

                async def cancel_when_told() -> None:
                    await go.wait()
                    scope.cancel()

                nursery.start_soon(cancel_when_told, name="external canceller")
            try:
                await body(scope, go)
            except LeftByTheBody:
                if left.way is not Way.RAISE:
                    raise
            else:
                if left.way is Way.RAISE and left.early:
                    raise AssertionError(
                        f"the exception raised in the body after event {left.at} did not reach "
                        "the consumer"
                    )
        nursery.cancel_scope.cancel()


async def leave_every_way(
    pipeline: AsyncPipeline,
    *,
    at: int | Sequence[int] | None = None,
    surfaces: Iterable[Surface] = ("execute_streaming", "stream"),
    ways: Iterable[Way | str] | None = None,
    seed: int | None = None,
    on_event: OnEvent | None = None,
    **kwargs: Any,
) -> list[Left]:
    """:func:`leave` once per surface and way (and per index of ``at``); every check made.

    Args:
        at: the event indices to leave after; ``None`` draws one per way at random among the
            events of a first full run (``seed`` makes the draw repeatable; the seed used is
            in any failure's message).
        ways: the ways to use (default: every way of each surface).
    """
    if "run_id" in kwargs:
        raise ValueError("leave_every_way() runs the pipeline many times: give no run_id")
    wanted = None if ways is None else {Way(w) for w in ways}
    if seed is None:
        seed = random.randrange(2**32)
    rng = random.Random(seed)
    indices: Sequence[int] | None = [at] if isinstance(at, int) else at
    count = 0
    if indices is None:
        with tracking(CallTracker()):
            count = len((await run_to_end(pipeline, **kwargs)).events)
    results = []
    pairs: list[tuple[Surface, Way]] = ways_for(surfaces)  # type: ignore[assignment]
    for surface, way in pairs:
        if wanted is not None and way not in wanted:
            continue
        chosen = indices if indices is not None else [rng.randrange(max(count, 1))]
        for index in chosen:
            try:
                results.append(
                    await leave(pipeline, way, index, surface=surface, on_event=on_event, **kwargs)
                )
            except AssertionError as exc:
                exc.add_note(f"leave_every_way seed: {seed}")
                raise
    return results
