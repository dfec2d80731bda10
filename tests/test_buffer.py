"""The hand-off between a run's tasks and its consumer: one bounded Trio memory channel."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
import trio.lowlevel
import trio.testing

from runnable_trio import AsyncPipeline, AsyncPythonTask, Lifecycle, Parallel
from runnable_trio._events import EventSink, open_event_channel


async def test_sink_sends_at_once_while_there_is_room_and_parks_when_full() -> None:
    send, receive = open_event_channel(2)
    sink = EventSink(send, "r", attribution=False)
    send_nowait = sink.unattributed_send()
    assert send_nowait is not None
    send_nowait({"type": "a"})
    send_nowait({"type": "b"})
    with pytest.raises(trio.WouldBlock):  # full: the caller must await emit
        send_nowait({"type": "c"})
    done = trio.Event()

    async def producer() -> None:
        await sink.emit({"type": "c"}, "s")
        done.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(producer)
        await trio.testing.wait_all_tasks_blocked()
        assert not done.is_set()
        assert receive.statistics().current_buffer_used == 2
        assert receive.receive_nowait()["type"] == "a"
        await done.wait()
    send.close()
    assert [event["type"] async for event in receive] == ["b", "c"]


async def test_a_parked_emit_is_cancellable_and_sends_nothing() -> None:
    send, receive = open_event_channel(1)
    sink = EventSink(send, "r", attribution=False)
    await sink.emit({"type": "a"}, "s")
    with trio.CancelScope() as scope:
        scope.cancel()
        await sink.emit({"type": "b"}, "s")
    assert scope.cancelled_caught
    assert receive.statistics().current_buffer_used == 1


async def test_attribution_never_takes_the_nowait_path_and_stamps_a_copy() -> None:
    send, receive = open_event_channel(4)
    sink = EventSink(send, "run-1", attribution=True)
    event = {"type": "e"}
    assert sink.unattributed_send() is None
    await sink.emit(event, "s")
    sent = receive.receive_nowait()
    assert event == {"type": "e"}  # the user's dict is not changed
    assert sent["_meta"]["run_id"] == "run-1"
    assert sent["_meta"]["step"] == "s"


async def test_lifecycle_nowait_drops_an_event_on_a_full_channel_instead_of_waiting() -> None:
    send, receive = open_event_channel(1)
    sink = EventSink(send, "r", attribution=True)
    sink.lifecycle_nowait(Lifecycle.STEP_CANCELLED, "s")
    sink.lifecycle_nowait(Lifecycle.STEP_CANCELLED, "t")  # no room: dropped, no error
    assert receive.receive_nowait()["_meta"]["step"] == "s"
    with pytest.raises(trio.WouldBlock):
        receive.receive_nowait()


async def test_branches_share_the_one_send_side_and_the_stream_ends_once_all_have() -> None:
    # Every branch sends into the one channel (no clone per branch): the stream must still
    # end only after the last branch's last event, and in each branch's own order.
    def branch(name: str, count: int) -> AsyncPipeline:
        async def produce() -> AsyncIterator[dict[str, Any]]:
            for i in range(count):
                yield {"type": name, "i": i}
                await trio.lowlevel.checkpoint()

        return AsyncPythonTask(name, produce).as_async_pipeline()

    pipeline = AsyncPipeline(
        [Parallel("fan", branches={f"b{k}": branch(f"b{k}", 5 + k) for k in range(4)})]
    )
    got: dict[str, list[int]] = {}
    async with pipeline.stream(buffer_size=1) as events:
        async for event in events:
            got.setdefault(event["type"], []).append(event["i"])
    assert got == {f"b{k}": list(range(5 + k)) for k in range(4)}


async def test_a_cancelled_consumer_is_told_so_even_with_events_buffered() -> None:
    async def burst() -> AsyncIterator[dict[str, Any]]:
        for i in range(3):
            yield {"type": "e", "i": i}
        await trio.sleep_forever()

    pipeline = AsyncPythonTask("burst", burst).as_async_pipeline()
    async with pipeline.stream(buffer_size=8) as events:
        assert (await events.receive())["i"] == 0
        await trio.testing.wait_all_tasks_blocked()
        with trio.CancelScope() as scope:
            scope.cancel()
            await events.receive()
        assert scope.cancelled_caught
        # The cancelled receive took nothing: the buffered events come next, in order.
        assert [(await events.receive())["i"] for _ in range(2)] == [1, 2]
