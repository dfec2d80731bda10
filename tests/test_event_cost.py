"""What one event costs the consumer, and what the fast path of a buffered event keeps.

While events are buffered, ``__anext__`` takes one without a trip through the scheduler (W1),
yet each event is still a cancellation point: a consumer is cancellable between any two
events, and leaving still cancels the run. ``execute_streaming()``'s iterator dispatches to
its stream with no frame of its own, and holds itself in no reference cycle.
"""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import pytest
import trio
import trio.testing

from runnable_trio import AsyncPipeline, AsyncPythonTask, Status, _stream
from runnable_trio._events import EventSink

from .helpers import collector_paused

SURFACES = ["stream", "execute_streaming"]
EVENTS = 50


async def _fast() -> AsyncIterator[dict[str, Any]]:
    # Never waits between events: all are in the buffer before the consumer runs again.
    for i in range(EVENTS):
        yield {"type": "chunk", "i": i}


async def _fast_then_wait() -> AsyncIterator[dict[str, Any]]:
    # The same, then the run stays live: what the consumer does next decides how it ends.
    async for event in _fast():
        yield event
    await trio.sleep_forever()


def _pipeline() -> AsyncPipeline:
    return AsyncPythonTask("fast", _fast).as_async_pipeline()


def _live_pipeline() -> AsyncPipeline:
    return AsyncPythonTask("fast", _fast_then_wait).as_async_pipeline()


async def test_one_cancellation_check_per_event(monkeypatch: pytest.MonkeyPatch) -> None:
    checks = 0
    check = _stream._checkpoint_if_cancelled

    async def counting() -> None:
        nonlocal checks
        checks += 1
        await check()

    monkeypatch.setattr(_stream, "_checkpoint_if_cancelled", counting)
    received = 0
    async for _ in _pipeline().execute_streaming():
        received += 1
    assert received == EVENTS
    # One per event, and one for the __anext__ that finds the end of the stream.
    assert checks == EVENTS + 1


@pytest.mark.parametrize("surface", SURFACES)
async def test_buffered_events_take_no_scheduling_round(surface: str) -> None:
    # A task that counts its turns: none comes while the consumer takes buffered events
    # (each event is a cancellation point, not a trip through the scheduler).
    turns = 0
    seen: list[int] = []

    async def count_turns() -> None:
        nonlocal turns
        while True:
            turns += 1
            await trio.lowlevel.checkpoint()

    async def consume(events: Any) -> None:
        async for event in events:
            seen.append(turns)
            if event["i"] == EVENTS - 1:
                return

    async with trio.open_nursery() as nursery:
        nursery.start_soon(count_turns)
        if surface == "stream":
            async with _live_pipeline().stream() as events:
                await consume(events)
        else:
            async with aclosing(_live_pipeline().execute_streaming()) as run:
                await consume(run)
        nursery.cancel_scope.cancel()
    assert len(seen) == EVENTS
    assert seen == [seen[0]] * EVENTS


@pytest.mark.parametrize("surface", SURFACES)
async def test_a_consumer_is_cancellable_between_any_two_buffered_events(
    surface: str,
) -> None:
    # The consumer cancels itself after each k-th event, events still buffered: the next
    # __anext__ raises Cancelled (no further event), and the run ends CANCELLED.
    for k in (1, 2, EVENTS // 2, EVENTS - 1):
        received: list[int] = []
        with trio.CancelScope() as scope:
            if surface == "stream":
                async with _live_pipeline().stream() as events:
                    run_log = events.run_log
                    async for event in events:
                        received.append(event["i"])
                        if len(received) == k:
                            scope.cancel()
            else:
                run = _live_pipeline().execute_streaming()
                run_log = run.run_log
                async for event in run:
                    received.append(event["i"])
                    if len(received) == k:
                        scope.cancel()
        assert scope.cancelled_caught
        assert received == list(range(k))
        assert run_log.status is Status.CANCELLED


@pytest.mark.parametrize("surface", SURFACES)
async def test_leaving_with_events_buffered_cancels_the_run(surface: str) -> None:
    if surface == "stream":
        async with _live_pipeline().stream() as events:
            async for _ in events:
                break
        run_log = events.run_log
    else:
        async with aclosing(_live_pipeline().execute_streaming()) as run:
            async for _ in run:
                break
        run_log = run.run_log
    assert run_log.status is Status.CANCELLED


async def test_an_iterator_never_started_is_freed_without_the_cyclic_gc() -> None:
    with collector_paused():
        run = _pipeline().execute_streaming()
        dropped = weakref.ref(run)
        del run
        assert dropped() is None


async def test_an_iterator_closed_before_it_started_is_exhausted_and_freed() -> None:
    with collector_paused():
        run = _pipeline().execute_streaming()
        await run.aclose()
        with pytest.raises(StopAsyncIteration):
            await run.__anext__()
        dropped = weakref.ref(run)
        del run
        assert dropped() is None


async def test_a_started_iterator_dropped_is_freed_and_its_run_cancelled() -> None:
    # The reference's drop-in form (``break``, no aclose()): refcounting alone frees the
    # iterator, so its safety net cancels the run at once, not at some later collection.
    with collector_paused():
        run = _live_pipeline().execute_streaming()
        run_log = run.run_log
        async for _ in run:
            break
        dropped = weakref.ref(run)
        del run
        assert dropped() is None
        with trio.fail_after(5):
            while run_log.status is Status.PROCESSING:
                await trio.lowlevel.checkpoint()
    assert run_log.status is Status.CANCELLED


@pytest.mark.parametrize("buffer_size", [1, 4, 256])
async def test_attributed_events_are_emitted_without_a_coroutine_while_there_is_room(
    monkeypatch: pytest.MonkeyPatch, buffer_size: int
) -> None:
    # With attribution on, a streaming step hands an event over with ``emit_nowait`` (no
    # coroutine); it awaits ``emit`` only for an event that found the buffer full. Every
    # event still arrives once, in order, stamped, whatever the buffer's size.
    awaited: list[str] = []
    emit = EventSink.emit

    async def counting(self: EventSink, event: dict[str, Any], step: str) -> None:
        awaited.append(event["type"])
        await emit(self, event, step)

    monkeypatch.setattr(EventSink, "emit", counting)
    chunks: list[dict[str, Any]] = []
    async with _pipeline().stream(attribution=True, buffer_size=buffer_size) as events:
        async for event in events:
            if event["type"] == "chunk":
                chunks.append(event)
    assert [event["i"] for event in chunks] == list(range(EVENTS))
    assert {event["_meta"]["step"] for event in chunks} == {"fast"}
    seqs = [event["_meta"]["seq"] for event in chunks]
    assert seqs == list(range(seqs[0], seqs[0] + EVENTS))
    if buffer_size > EVENTS:
        assert "chunk" not in awaited
    else:
        assert 0 < awaited.count("chunk") < EVENTS
