"""The bounded event buffer between a run and its consumer."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from runnable_trio._buffer import EventBuffer


async def test_fifo_and_end_of_channel_after_close() -> None:
    buffer = EventBuffer(4)
    for i in range(3):
        assert buffer.put_nowait({"type": "e", "i": i})
    buffer.close()
    assert [(await buffer.get())["i"] for _ in range(3)] == [0, 1, 2]
    with pytest.raises(trio.EndOfChannel):
        await buffer.get()


async def test_put_waits_while_full_and_resumes_when_taken() -> None:
    buffer = EventBuffer(2)
    assert buffer.put_nowait({"type": "a"})
    assert buffer.put_nowait({"type": "b"})
    assert not buffer.put_nowait({"type": "c"})
    done = trio.Event()

    async def producer() -> None:
        await buffer.put({"type": "c"})
        done.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(producer)
        await trio.testing.wait_all_tasks_blocked()
        assert not done.is_set()
        assert len(buffer) == 2
        assert (await buffer.get())["type"] == "a"
        await done.wait()
    assert [(await buffer.get())["type"] for _ in range(2)] == ["b", "c"]


async def test_get_waits_for_an_event_and_for_close() -> None:
    buffer = EventBuffer(1)
    got: list[str] = []

    async def consumer() -> None:
        got.append((await buffer.get())["type"])
        with pytest.raises(trio.EndOfChannel):
            await buffer.get()
        got.append("end")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consumer)
        await trio.testing.wait_all_tasks_blocked()
        await buffer.put({"type": "x"})
        await trio.testing.wait_all_tasks_blocked()
        assert got == ["x"]
        buffer.close()
    assert got == ["x", "end"]


async def test_waiting_put_and_get_are_cancellable() -> None:
    full = EventBuffer(1)
    full.put_nowait({"type": "a"})
    with trio.move_on_after(0.01) as scope:
        await full.put({"type": "b"})
    assert scope.cancelled_caught
    assert len(full) == 1  # the cancelled put appended nothing

    empty = EventBuffer(1)
    with trio.move_on_after(0.01) as scope:
        await empty.get()
    assert scope.cancelled_caught


async def test_get_checks_cancellation_even_with_events_buffered() -> None:
    buffer = EventBuffer(2)
    buffer.put_nowait({"type": "a"})
    with trio.CancelScope() as scope:
        scope.cancel()
        await buffer.get()
    assert scope.cancelled_caught
    assert len(buffer) == 1
