"""compat's bounded hand-off (``runnable._handoff``) between a Trio task and an asyncio task.

Both directions run for real on one thread: Trio tasks in the test's run, asyncio tasks on a
trio-asyncio loop inside it. The tests synchronise on ``wait_all_tasks_blocked`` (every task of
both worlds parked), never on time. The last tests drive ``_aio.iterate_on_loop`` (an asyncio
generator read from Trio through a hand-off) the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.lowlevel
import trio.testing
import trio_asyncio
from runnable._aio import iterate_on_loop
from runnable._handoff import AsyncioWaiter, HandOff, TrioWaiter, Waiter

#: (producer's world, consumer's world): the asyncio generator's items go to Trio (``_aio``),
#: a run's events go from Trio to the asyncio consumer (``_guest``).
DIRECTIONS = [
    pytest.param(("asyncio", "trio"), id="asyncio_to_trio"),
    pytest.param(("trio", "asyncio"), id="trio_to_asyncio"),
]


class Running:
    """A side started in its world: a Trio task in a cancel scope, or an asyncio task."""

    def __init__(self) -> None:
        self.scope = trio.CancelScope()
        self.task: asyncio.Task[None] | None = None
        self.returned = False  # the side's function returned (was not cancelled)
        self.ended = False

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
        else:
            self.scope.cancel()


class Worlds:
    """Waiters and tasks for either world: the test's Trio run and its trio-asyncio loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, nursery: trio.Nursery) -> None:
        self.loop = loop
        self.nursery = nursery

    def waiter(self, world: str) -> Waiter:
        return TrioWaiter() if world == "trio" else AsyncioWaiter(self.loop)

    def start(self, world: str, function: Callable[[], Awaitable[None]]) -> Running:
        running = Running()

        async def run() -> None:
            try:
                await function()
                running.returned = True
            finally:
                running.ended = True

        if world == "trio":

            async def in_scope() -> None:
                with running.scope:
                    await run()

            self.nursery.start_soon(in_scope)
        else:
            running.task = self.loop.create_task(run())
        return running

    @staticmethod
    async def yield_in(world: str) -> None:
        if world == "trio":
            await trio.lowlevel.checkpoint()
        else:
            await asyncio.sleep(0)


@pytest.fixture
async def worlds() -> AsyncIterator[Worlds]:
    async with trio_asyncio.open_loop() as loop, trio.open_nursery() as nursery:
        yield Worlds(loop, nursery)
        nursery.cancel_scope.cancel()  # any side a failed test left parked


async def settle() -> None:
    """Until every task of both worlds is parked."""
    await trio.testing.wait_all_tasks_blocked()


def handoff(worlds: Worlds, direction: tuple[str, str], capacity: int) -> HandOff[int]:
    producer, consumer = direction
    return HandOff(capacity, producer=worlds.waiter(producer), consumer=worlds.waiter(consumer))


def fill(items: HandOff[int], start: int = 0) -> Callable[[], Awaitable[None]]:
    """A producer that puts ``start``, ``start + 1``... until the hand-off is full, then
    waits for room."""

    async def produce() -> None:
        i = start
        while not items.put(i):
            i += 1
        await items.wait_for_room()

    return produce


@pytest.mark.parametrize("direction", DIRECTIONS)
async def test_close_wakes_a_producer_parked_on_a_full_hand_off(
    worlds: Worlds, direction: tuple[str, str]
) -> None:
    items = handoff(worlds, direction, capacity=4)
    producer = worlds.start(direction[0], fill(items))
    await settle()
    assert not producer.ended
    assert list(items.items) == [0, 1, 2, 3]

    items.close()
    await settle()
    assert producer.returned  # woken, not cancelled
    # What was put before close() can still be taken; then the consumer does not park.
    assert [items.take() for _ in range(4)] == [0, 1, 2, 3]
    consumer = worlds.start(direction[1], items.wait_for_item)
    await settle()
    assert consumer.returned


@pytest.mark.parametrize("direction", DIRECTIONS)
async def test_close_wakes_a_consumer_parked_on_an_empty_hand_off(
    worlds: Worlds, direction: tuple[str, str]
) -> None:
    items = handoff(worlds, direction, capacity=4)
    consumer = worlds.start(direction[1], items.wait_for_item)
    await settle()
    assert not consumer.ended

    items.close()
    await settle()
    assert consumer.returned
    assert not items.items


@pytest.mark.parametrize("direction", DIRECTIONS)
async def test_an_item_wakes_the_parked_consumer(
    worlds: Worlds, direction: tuple[str, str]
) -> None:
    items = handoff(worlds, direction, capacity=4)
    consumer = worlds.start(direction[1], items.wait_for_item)
    await settle()
    assert not consumer.ended

    assert not items.put(7)
    await settle()
    assert consumer.returned
    assert items.take() == 7


@pytest.mark.parametrize("direction", DIRECTIONS)
async def test_the_producer_is_woken_once_half_the_room_is_free(
    worlds: Worlds, direction: tuple[str, str]
) -> None:
    items = handoff(worlds, direction, capacity=8)
    produced: list[int] = []

    async def produce() -> None:
        for i in range(100):
            produced.append(i)
            if items.put(i):
                await items.wait_for_room()

    producer = worlds.start(direction[0], produce)
    await settle()
    assert list(items.items) == list(range(8))
    taken = []
    for left in (7, 6, 5):  # more than half still taken: the producer stays parked
        taken.append(items.take())
        await settle()
        assert len(items.items) == left
    taken.append(items.take())  # 4 left: half the room is free
    await settle()
    # Woken once, it refilled the hand-off in one burst and parked again.
    assert list(items.items) == list(range(4, 12))
    assert produced == list(range(12))
    assert taken == [0, 1, 2, 3]
    assert not producer.ended


@pytest.mark.parametrize("direction", DIRECTIONS)
async def test_a_producer_waiting_until_taken_is_woken_by_the_last_take_only(
    worlds: Worlds, direction: tuple[str, str]
) -> None:
    parks = 0

    class Counting:
        def __init__(self, waiter: Waiter) -> None:
            self.waiter = waiter

        @property
        def parked(self) -> object | None:
            return self.waiter.parked

        async def wait(self) -> None:
            nonlocal parks
            parks += 1
            await self.waiter.wait()

        def wake(self) -> None:
            self.waiter.wake()

    producer_world, consumer_world = direction
    items: HandOff[int] = HandOff(
        8,
        producer=Counting(worlds.waiter(producer_world)),
        consumer=worlds.waiter(consumer_world),
    )
    for i in range(6):
        items.put(i)
    producer = worlds.start(producer_world, items.wait_until_taken)
    await settle()
    for left in (5, 4, 3, 2, 1):  # half the room free is not enough here
        items.take()
        await settle()
        assert len(items.items) == left
        assert not producer.ended
    items.take()
    await settle()
    assert producer.returned
    assert parks == 1  # woken once, by the last take: no wake-up per take of the second half
    # Back to the usual rule: a producer waiting for room is woken at half.
    for i in range(8):
        items.put(i)
    producer = worlds.start(producer_world, items.wait_for_room)
    await settle()
    for _ in range(4):
        items.take()
    await settle()
    assert producer.returned


@pytest.mark.parametrize("direction", DIRECTIONS)
async def test_discarding_drops_the_items_and_wakes_a_producer_waiting_until_taken(
    worlds: Worlds, direction: tuple[str, str]
) -> None:
    items = handoff(worlds, direction, capacity=4)
    for i in range(3):
        items.put(i)
    producer = worlds.start(direction[0], items.wait_until_taken)
    await settle()
    assert not producer.ended
    items.discard()
    await settle()
    assert producer.returned
    assert not items.items


@pytest.mark.parametrize("direction", DIRECTIONS)
async def test_capacity_is_never_exceeded(worlds: Worlds, direction: tuple[str, str]) -> None:
    producer_world, consumer_world = direction
    capacity, count = 16, 2000
    items = handoff(worlds, direction, capacity)
    lengths: list[int] = []
    got: list[int] = []

    async def produce() -> None:
        for i in range(count):
            full = items.put(i)
            lengths.append(len(items.items))
            if full:
                await items.wait_for_room()
            if i % 5 == 0:
                await worlds.yield_in(producer_world)
        items.close()

    async def consume() -> None:
        while True:
            await items.wait_for_item()
            if not items.items:
                return  # closed and drained
            got.append(items.take())
            lengths.append(len(items.items))
            # A consumer that often falls behind: the hand-off keeps filling up.
            for _ in range(len(got) % 3):
                await worlds.yield_in(consumer_world)

    producer = worlds.start(producer_world, produce)
    consumer = worlds.start(consumer_world, consume)
    await settle()
    assert producer.returned
    assert consumer.returned
    assert got == list(range(count))
    assert max(lengths) == capacity  # filled up, never beyond


#: Whether the other side would wake the cancelled task before it has resumed: that wake-up
#: must not reach it (no second reschedule, no set_result on the cancelled future).
WAKE_BEFORE_RESUMING = [pytest.param(False, id="cancelled"), pytest.param(True, id="then_woken")]


@pytest.mark.parametrize("wake_before_resuming", WAKE_BEFORE_RESUMING)
@pytest.mark.parametrize("world", ["trio", "asyncio"])
async def test_cancelling_a_parked_producer_leaves_the_hand_off_consistent(
    worlds: Worlds, world: str, wake_before_resuming: bool
) -> None:
    other = "asyncio" if world == "trio" else "trio"
    waiter = worlds.waiter(world)
    items = HandOff[int](4, producer=waiter, consumer=worlds.waiter(other))
    producer = worlds.start(world, fill(items))
    await settle()
    assert not producer.ended
    assert waiter.parked is not None

    producer.cancel()
    if not wake_before_resuming:
        await settle()
        assert waiter.parked is None  # forgotten: nobody is parked
    assert [items.take() for _ in range(2)] == [0, 1]  # half free: wakes a parked producer
    await settle()
    assert producer.ended
    assert not producer.returned
    assert waiter.parked is None
    assert list(items.items) == [2, 3]

    # The hand-off still works: a new producer parks on it and is woken at half.
    again = worlds.start(world, fill(items, start=4))
    await settle()
    assert not again.ended
    assert list(items.items) == [2, 3, 4, 5]
    assert [items.take() for _ in range(2)] == [2, 3]
    await settle()
    assert again.returned


@pytest.mark.parametrize("wake_before_resuming", WAKE_BEFORE_RESUMING)
@pytest.mark.parametrize("world", ["trio", "asyncio"])
async def test_cancelling_a_parked_consumer_leaves_the_hand_off_consistent(
    worlds: Worlds, world: str, wake_before_resuming: bool
) -> None:
    other = "asyncio" if world == "trio" else "trio"
    waiter = worlds.waiter(world)
    items = HandOff[int](4, producer=worlds.waiter(other), consumer=waiter)
    consumer = worlds.start(world, items.wait_for_item)
    await settle()
    assert not consumer.ended
    assert waiter.parked is not None

    consumer.cancel()
    if not wake_before_resuming:
        await settle()
        assert waiter.parked is None
    assert not items.put(1)  # wakes a parked consumer
    await settle()
    assert consumer.ended
    assert not consumer.returned
    assert waiter.parked is None
    assert list(items.items) == [1]

    assert items.take() == 1
    again = worlds.start(world, items.wait_for_item)
    await settle()
    assert not again.ended
    assert not items.put(2)
    await settle()
    assert again.returned
    assert items.take() == 2


def test_a_hand_off_holds_at_least_one_item() -> None:
    waiter: Any = TrioWaiter()
    with pytest.raises(ValueError, match="at least one item"):
        HandOff(0, producer=waiter, consumer=waiter)


# --- _aio: an asyncio generator read from Trio --------------------------------------------


async def test_closing_the_iteration_ends_a_generator_parked_on_a_full_hand_off(
    worlds: Worlds,
) -> None:
    produced: list[int] = []
    finalized = []

    async def numbers() -> AsyncIterator[int]:
        try:
            for i in range(100):
                produced.append(i)
                yield i
        finally:
            await asyncio.sleep(0)  # cleanup that itself awaits, on the asyncio side
            finalized.append(True)

    iteration = iterate_on_loop(worlds.loop, numbers(), capacity=4)
    assert await anext(iteration) == 0
    await settle()
    assert produced == [0, 1, 2, 3]  # ran ahead until full; 3 left is more than half

    await iteration.aclose()
    assert finalized == [True]  # waited for
    await settle()
    assert produced == [0, 1, 2, 3]  # never resumed past the parked item


async def test_the_generators_items_arrive_in_order_and_its_error_after_them(
    worlds: Worlds,
) -> None:
    async def numbers() -> AsyncIterator[int]:
        for i in range(50):
            yield i
            if i % 7 == 0:
                await asyncio.sleep(0)
        raise ValueError("after 50")

    got = []
    with pytest.raises(ValueError, match="after 50"):
        async for i in iterate_on_loop(worlds.loop, numbers(), capacity=4):
            got.append(i)
    assert got == list(range(50))
