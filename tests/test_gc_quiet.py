"""A Map item costs few objects the cyclic GC must walk, while it runs and after it ended.

A full collection walks every tracked object in the process, and a Map over 10,000 items
holds 10,000 stacks at once: each tracked object an item holds is paid for in every full
collection of the run (profiles put cyclic GC at half a big Map's time). These tests count
the objects ``gc.get_objects()`` sees per item, against a plain Trio task parked the same
way in the same process, so a change that adds a frame, a closure cell, an iterator or a
container per item fails here rather than in a benchmark. Each figure is a slope (the counts
at two sizes), so what a run holds once, whatever its size, does not blur it.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any

import trio

from runnable_trio import AsyncPipeline, AsyncPythonTask, Map, MemoryRunLogStore
from tests.helpers import run

SIZES = (200, 600)

#: Tracked objects a running Map item may hold beyond what a plain Trio task parked on the
#: same event holds: one frame (a branch of one plain task runs as its ``run_alone``, not as
#: the branch's, the step's and ``_execute``'s three), the child scope (no dict: it reads its
#: parent's values) and the branch's record. On the file store the step's record and its
#: attempt are made as the attempt ends (the journal is what a reader sees of a live run),
#: so the branch's dict of steps is still empty (an empty dict is not tracked).
EXTRA_WHILE_RUNNING = 3
#: Tracked objects an ended item's records may hold: its BranchLog and the dict of its steps,
#: its StepLog with its list of attempts, and its Attempt.
AFTER_THE_ITEM = 5


def _tracked() -> int:
    gc.collect()
    return len(gc.get_objects())


class _Parked:
    """Items that park on one event; the last to arrive counts the objects alive."""

    def __init__(self, items: int) -> None:
        self.items = items
        self.arrived = 0
        self.release = trio.Event()
        self.count: int | None = None

    async def item(self, item: int = 0) -> None:
        self.arrived += 1
        if self.arrived == self.items:
            self.count = _tracked()
            self.release.set()
        await self.release.wait()


def _slope(counts: list[int]) -> float:
    """Objects per item, from the counts at the two ``SIZES``."""
    small, big = counts
    return (big - small) / (SIZES[1] - SIZES[0])


async def _plain_task_parked(items: int) -> int:
    parked = _Parked(items)
    async with trio.open_nursery() as nursery:
        for _ in range(items):
            nursery.start_soon(parked.item)
    assert parked.count is not None
    return parked.count


def _map_of(function: Callable[..., Any]) -> tuple[AsyncPipeline, list[int]]:
    """A Map of ``function``, between two steps that count the tracked objects."""
    counts: list[int] = []

    async def count() -> None:
        counts.append(_tracked())

    branch = AsyncPythonTask("park", function).as_async_pipeline()
    pipeline = AsyncPipeline(
        [
            AsyncPythonTask("before", count),
            Map("each", iterate_on="items", iterate_as="item", branch=branch),
            AsyncPythonTask("after", count),
        ]
    )
    return pipeline, counts


async def test_a_running_map_item_holds_few_more_tracked_objects_than_a_plain_task() -> None:
    plain = _slope([await _plain_task_parked(items) for items in SIZES])
    running = []
    for items in SIZES:
        parked = _Parked(items)
        pipeline, _ = _map_of(parked.item)
        await run(pipeline, parameters={"items": list(range(items))})
        assert parked.count is not None
        running.append(parked.count)
    ours = _slope(running)
    # Rounded: events the consumer has not taken yet are a fraction of an object per item.
    assert round(ours - plain) <= EXTRA_WHILE_RUNNING, (
        f"a running Map item holds {ours:.2f} tracked objects, a plain Trio task {plain:.2f}"
    )


async def test_an_ended_map_item_leaves_only_its_records() -> None:
    async def item(item: int) -> None:
        await trio.lowlevel.checkpoint()

    left = []
    for items in SIZES:
        pipeline, counts = _map_of(item)
        await run(pipeline, parameters={"items": list(range(items))})
        before, after = counts
        left.append(after - before)
    per_item = _slope(left)
    assert round(per_item) <= AFTER_THE_ITEM, f"an ended Map item leaves {per_item:.2f} objects"


#: Tracked objects a step of a chain leaves for the rest of the run: its StepLog, the list of
#: its attempts and its Attempt (its dicts hold no container, so the cyclic GC does not track
#: them). A full collection walks each of them, as often as the run has full collections.
CHAIN_STEP_LEAVES = 3


async def _step(x: int) -> int:
    return x + 1


def _chain_of(length: int) -> tuple[AsyncPipeline, list[int]]:
    """A chain of ``length`` plain tasks, between two steps that count the tracked objects."""
    counts: list[int] = []

    async def count() -> None:
        counts.append(_tracked())

    steps = [AsyncPythonTask(f"s{i}", _step, returns=["x"]) for i in range(length)]
    pipeline = AsyncPipeline(
        [AsyncPythonTask("before", count), *steps, AsyncPythonTask("after", count)]
    )
    return pipeline, counts


async def test_a_chain_step_leaves_only_its_records() -> None:
    left = []
    for length in SIZES:
        pipeline, counts = _chain_of(length)
        await run(pipeline, parameters={"x": 0}, store=MemoryRunLogStore())
        before, after = counts
        left.append(after - before)
    per_step = _slope(left)
    assert round(per_step) <= CHAIN_STEP_LEAVES, f"a chain step leaves {per_step:.2f} objects"


async def test_a_chain_step_on_the_file_store_leaves_only_its_records() -> None:
    """The file store keeps what it wrote of each step as text (``StepTexts``: strs and ints
    in dicts of its own, made once per run), not as objects per step: a step leaves the same
    records as on the memory store. The GC's full collections in a long run walk every one
    (bench W2 K=5000), so a tuple, a list or a copy kept per step would fail here."""
    left = []
    for length in SIZES:
        pipeline, counts = _chain_of(length)
        await run(pipeline, parameters={"x": 0})  # the default store: files
        before, after = counts
        left.append(after - before)
    per_step = _slope(left)
    assert round(per_step) <= CHAIN_STEP_LEAVES, f"a chain step leaves {per_step:.2f} objects"
