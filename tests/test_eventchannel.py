"""The run's event channel on its own: bounded, FIFO, and exact under cancellation.

Each ordering that matters is forced (``wait_all_tasks_blocked`` before the next move), the
races between a wake-up and a cancellation included: an item whose send was cancelled is never
delivered, one that woke a task is never lost, whatever arrives next.
"""

from __future__ import annotations

import random

import pytest
import trio
import trio.testing

from runnable_trio._eventchannel import EventChannel

Channel = EventChannel[object]


def _channel(capacity: int, *items: object) -> Channel:
    channel: Channel = EventChannel(capacity)
    for item in items:
        channel.send_nowait(item)
    return channel


async def test_fills_to_its_capacity_and_drains_in_order() -> None:
    channel = _channel(3, 0, 1, 2)
    with pytest.raises(trio.WouldBlock):
        channel.send_nowait(3)
    assert len(channel) == 3
    assert [channel.take() for _ in range(2)] == [0, 1]
    assert channel.receive_nowait() == 2
    with pytest.raises(IndexError):
        channel.take()
    with pytest.raises(trio.WouldBlock):
        channel.receive_nowait()
    channel.send_nowait(4)
    assert await channel.receive() == 4


async def test_a_full_buffer_makes_senders_wait_and_admits_them_first_come_first() -> None:
    channel = _channel(2, 0, 1)
    returned: list[int] = []

    async def sender(item: int) -> None:
        await channel.send(item)
        returned.append(item)

    async with trio.open_nursery() as nursery:
        for item in (2, 3, 4):
            nursery.start_soon(sender, item)
            await trio.testing.wait_all_tasks_blocked()  # they wait in this order
        assert returned == []
        assert len(channel) == 2  # a waiting sender's item is not buffered
        assert channel.take() == 0
        # The room went to the first sender at once: the buffer is full again, nothing more.
        assert len(channel) == 2
        await trio.testing.wait_all_tasks_blocked()
        assert returned == [2]
        got = []
        for _ in range(4):
            got.append(await channel.receive())
            assert len(channel) <= 2
    assert got == [1, 2, 3, 4]
    assert returned == [2, 3, 4]


async def test_send_and_receive_are_checkpoints_even_when_they_need_not_wait() -> None:
    channel = _channel(1)
    with trio.CancelScope() as scope:
        scope.cancel()
        await channel.send("a")
    assert scope.cancelled_caught
    assert len(channel) == 0
    channel.send_nowait("a")
    with trio.CancelScope() as scope:
        scope.cancel()
        await channel.receive()
    assert scope.cancelled_caught
    assert len(channel) == 1
    with trio.testing.assert_checkpoints():  # a schedule point too
        assert await channel.receive() == "a"
    with trio.testing.assert_checkpoints():
        await channel.send("b")
    assert channel.take() == "b"


async def test_a_waiting_sender_cancelled_sends_nothing_and_the_next_one_goes_on() -> None:
    channel = _channel(1, "a")
    first, second = trio.CancelScope(), trio.CancelScope()
    returned: list[str] = []

    async def sender(scope: trio.CancelScope, item: str) -> None:
        with scope:
            await channel.send(item)
            returned.append(item)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sender, first, "b")
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(sender, second, "c")
        await trio.testing.wait_all_tasks_blocked()
        first.cancel()
        await trio.testing.wait_all_tasks_blocked()
        assert first.cancelled_caught
        assert channel.take() == "a"  # the room goes to the sender still waiting
        await trio.testing.wait_all_tasks_blocked()
    assert returned == ["c"]
    assert channel.take() == "c"
    with pytest.raises(IndexError):  # "b" was never sent
        channel.take()


async def test_a_sender_cancelled_after_its_item_was_admitted_has_sent_it() -> None:
    channel = _channel(1, "a")
    scope = trio.CancelScope()
    returned: list[str] = []

    async def sender() -> None:
        with scope:
            await channel.send("b")
            returned.append("b")
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sender)
        await trio.testing.wait_all_tasks_blocked()
        assert channel.take() == "a"  # "b" is in, its sender woken: too late to cancel it
        scope.cancel()
    assert returned == ["b"]
    assert scope.cancelled_caught  # at its next checkpoint
    assert channel.take() == "b"


async def test_the_last_waiting_sender_cancelled_leaves_plain_takes() -> None:
    channel = _channel(2, "a", "b")
    scope = trio.CancelScope()

    async def sender() -> None:
        with scope:
            await channel.send("c")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sender)
        await trio.testing.wait_all_tasks_blocked()
        scope.cancel()
    assert [channel.take(), channel.take()] == ["a", "b"]
    assert len(channel) == 0
    channel.send_nowait("d")  # room again, for anyone
    assert channel.take() == "d"


async def test_an_item_that_woke_a_receiver_cancelled_before_it_ran_is_received() -> None:
    channel = _channel(1)
    scope = trio.CancelScope()
    got: list[object] = []

    async def receiver() -> None:
        with scope:
            got.append(await channel.receive())
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(receiver)
        await trio.testing.wait_all_tasks_blocked()
        assert channel.receiver_waiting
        channel.send_nowait("a")
        assert not channel.receiver_waiting
        scope.cancel()  # the wake-up came first: the receive returns "a"
    assert got == ["a"]
    assert scope.cancelled_caught
    assert len(channel) == 0


async def test_a_waiting_receiver_cancelled_leaves_the_next_item_buffered() -> None:
    channel = _channel(1)
    with trio.move_on_after(1) as scope:
        await channel.receive()
    assert scope.cancelled_caught
    assert not channel.receiver_waiting
    channel.send_nowait("a")
    assert channel.receive_nowait() == "a"


async def test_close_lets_the_consumer_take_what_is_buffered_then_ends() -> None:
    channel = _channel(4, 1, 2)
    channel.close()
    channel.close()  # again: nothing more
    with pytest.raises(trio.ClosedResourceError):
        channel.send_nowait(3)
    with pytest.raises(trio.ClosedResourceError):
        await channel.send(3)
    assert await channel.receive() == 1
    assert channel.receive_nowait() == 2
    with pytest.raises(trio.EndOfChannel):
        channel.receive_nowait()
    with pytest.raises(trio.EndOfChannel):
        await channel.receive()


async def test_close_ends_a_waiting_receive() -> None:
    channel = _channel(1)
    ended = trio.Event()

    async def receiver() -> None:
        with pytest.raises(trio.EndOfChannel):
            await channel.receive()
        ended.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(receiver)
        await trio.testing.wait_all_tasks_blocked()
        channel.close()
    assert ended.is_set()
    assert not channel.receiver_waiting


async def test_an_item_sent_to_a_waiting_receiver_does_not_count_against_the_capacity() -> None:
    # As with a Trio memory channel: the item goes to the receiver, the buffer stays empty.
    channel = _channel(1)
    got: list[object] = []

    async def receiver() -> None:
        got.append(await channel.receive())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(receiver)
        await trio.testing.wait_all_tasks_blocked()
        channel.send_nowait("a")
        assert len(channel) == 0
        channel.send_nowait("b")
        with pytest.raises(trio.WouldBlock):
            channel.send_nowait("c")
    assert got == ["a"]
    assert channel.take() == "b"


async def test_items_sent_after_a_receiver_was_woken_and_before_close_all_arrive() -> None:
    channel = _channel(1)
    got: list[object] = []

    async def receiver() -> None:
        got.append(await channel.receive())
        got.append(await channel.receive())
        with pytest.raises(trio.EndOfChannel):
            await channel.receive()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(receiver)
        await trio.testing.wait_all_tasks_blocked()
        channel.send_nowait("a")  # wakes it
        channel.send_nowait("b")
        channel.close()
    assert got == ["a", "b"]


async def test_close_fails_a_waiting_send_whose_item_is_not_sent() -> None:
    channel = _channel(1, "a")
    failed = trio.Event()

    async def sender() -> None:
        with pytest.raises(trio.ClosedResourceError):
            await channel.send("b")
        failed.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sender)
        await trio.testing.wait_all_tasks_blocked()
        channel.close()
    assert failed.is_set()
    assert channel.take() == "a"
    with pytest.raises(trio.EndOfChannel):
        channel.receive_nowait()


async def test_a_second_task_waiting_to_receive_is_refused() -> None:
    channel = _channel(1)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(channel.receive)
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(trio.BusyResourceError):
            await channel.receive()
        channel.send_nowait("a")  # the first one's
    assert len(channel) == 0


@pytest.mark.parametrize("seed", range(25))
async def test_nothing_is_lost_or_duplicated_whatever_is_cancelled_when(seed: int) -> None:
    # Senders and a consumer, every call in a scope a canceller may cancel at any moment
    # (before a wait, during it, just after its wake-up): each sender's items arrive exactly
    # when its send returned, in its order, and the buffer never holds more than its capacity.
    rng = random.Random(seed)
    capacity = rng.choice([1, 2, 3])
    channel = _channel(capacity)
    live: list[trio.CancelScope] = []
    sent: dict[int, list[int]] = {k: [] for k in range(3)}
    received: list[tuple[int, int]] = []

    async def pause() -> None:
        for _ in range(rng.randrange(3)):
            await trio.lowlevel.checkpoint()

    async def sender(k: int) -> None:
        for i in range(40):
            with trio.CancelScope() as scope:
                live.append(scope)
                if rng.random() < 0.3:
                    try:
                        channel.send_nowait((k, i))
                    except trio.WouldBlock:
                        await channel.send((k, i))
                else:
                    await channel.send((k, i))
                sent[k].append(i)
            live.remove(scope)
            await pause()

    async def produce() -> None:
        async with trio.open_nursery() as nursery:
            for k in sent:
                nursery.start_soon(sender, k)
        channel.close()

    async def consume() -> None:
        while True:
            assert len(channel) <= capacity
            with trio.CancelScope() as scope:
                live.append(scope)
                choice = rng.random()
                try:
                    if choice < 0.3:
                        item = channel.take()
                    elif choice < 0.5:
                        item = channel.receive_nowait()
                    else:
                        item = await channel.receive()
                except (IndexError, trio.WouldBlock):
                    pass
                except trio.EndOfChannel:
                    return
                else:
                    assert isinstance(item, tuple)
                    received.append(item)
            live.remove(scope)
            await pause()

    async def cancel_at_random() -> None:
        while True:
            await pause()
            await trio.lowlevel.checkpoint()
            if live and rng.random() < 0.3:
                rng.choice(live).cancel()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(cancel_at_random)
        async with trio.open_nursery() as parties:
            parties.start_soon(produce)
            parties.start_soon(consume)
        nursery.cancel_scope.cancel()
    for k, items in sent.items():
        assert [i for sender_k, i in received if sender_k == k] == items
    assert len(received) == sum(map(len, sent.values()))
    assert not channel.receiver_waiting
