"""A run that was left (its consumer gone while branches were live) is freed by reference
counting once it has ended: its record, its tasks, its frames.

Leaving cancels every live branch; their ``Cancelled`` travel up through the fan-out's group
and out of the run. A frame on that way that still holds the group (or the exception it
raises) when the exception leaves it makes a cycle: exception, traceback, frame, exception.
The whole run then waits for the cyclic collector (thousands of objects for a fan-out of a
hundred), which walks it meanwhile and frees it later, inside some other run's time.

And the branches' own cleanup comes first: every cut-short branch's ``finally`` runs before
any branch's task unwinds the library's frames and exits.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import trio

from runnable_trio import AsyncPipeline, AsyncPythonTask, Map, Parallel, RunLog

from .helpers import collector_paused


@pytest.fixture
def _no_collection() -> Iterator[None]:
    with collector_paused():
        yield


async def _live(item: int = 0) -> AsyncIterator[dict[str, Any]]:
    yield {"type": "live"}
    await trio.sleep_forever()


_LIVE = AsyncPythonTask(name="live", function=_live)


def _parallel(branches: int) -> AsyncPipeline:
    return AsyncPipeline(
        [Parallel("fan", branches={f"b{i}": _LIVE.as_async_pipeline() for i in range(branches)})]
    )


def _map(items: int) -> AsyncPipeline:
    return AsyncPipeline(
        [Map("each", iterate_on="items", iterate_as="item", branch=_LIVE.as_async_pipeline())]
    )


def _nested(branches: int) -> AsyncPipeline:
    inner = _parallel(branches)
    two = AsyncPythonTask(name="after", function=_live)
    return AsyncPipeline(
        [Parallel("outer", branches={"a": inner, "b": AsyncPipeline([_LIVE, two])})]
    )


_SHAPES = {
    "parallel": (_parallel(5), 5),
    "map": (_map(5), 5),
    "nested": (_nested(3), 4),
    "one live step": (AsyncPipeline([_LIVE]), 1),
}


async def _left(pipeline: AsyncPipeline, live: int, api: str) -> weakref.ref[RunLog]:
    seen = 0
    parameters = {"items": list(range(live))}
    if api == "stream":
        async with pipeline.stream(parameters=parameters) as events:
            async for _ in events:
                seen += 1
                if seen == live:
                    break
            record = weakref.ref(events.run_log)
        return record
    run = pipeline.execute_streaming(parameters=parameters)
    async for _ in run:
        seen += 1
        if seen == live:
            break
    record = weakref.ref(run.run_log)
    await run.aclose()
    return record


@pytest.mark.usefixtures("_no_collection")
@pytest.mark.parametrize("api", ["execute_streaming", "stream"])
@pytest.mark.parametrize("shape", list(_SHAPES))
async def test_a_left_run_is_freed_without_the_collector(shape: str, api: str) -> None:
    pipeline, live = _SHAPES[shape]
    record = await _left(pipeline, live, api)
    await trio.lowlevel.checkpoint()  # this task's own last wakeup, let go
    run_log = record()
    if run_log is not None:  # name what holds it, for whoever has to mend it
        holders = [type(holder).__qualname__ for holder in gc.get_referrers(run_log)]
        pytest.fail(f"the left run's record is still held, by {holders}")


@pytest.mark.usefixtures("_no_collection")
async def test_a_dropped_iterator_s_run_is_freed_without_the_collector() -> None:
    # ``async for ...: break`` with no aclose(): the run is ended by the safety net's task.
    pipeline, live = _SHAPES["parallel"]
    seen = 0
    run = pipeline.execute_streaming()
    record = weakref.ref(run.run_log)
    async for _ in run:
        seen += 1
        if seen == live:
            break
    del run
    # The safety net's system task ends the run; give it the rounds it needs.
    with trio.fail_after(5):
        while record() is not None:
            await trio.sleep(0.001)


class _Exits(trio.abc.Instrument):
    """Records, in order, each live branch's cleanup and each task's exit."""

    def __init__(self, order: list[str]) -> None:
        self.order = order

    def task_exited(self, task: trio.lowlevel.Task) -> None:
        self.order.append(f"exit {task.name}")


@pytest.mark.parametrize("api", ["execute_streaming", "stream"])
@pytest.mark.parametrize("fan", ["parallel", "map"])
async def test_every_cut_short_branch_cleans_up_before_any_branch_task_exits(
    fan: str, api: str
) -> None:
    branches = 6
    order: list[str] = []

    async def live(item: int = 0) -> AsyncIterator[dict[str, Any]]:
        yield {"type": "live"}
        try:
            await trio.sleep_forever()
        finally:
            order.append("cleanup")

    step = AsyncPythonTask(name="live", function=live).as_async_pipeline()
    pipeline = (
        AsyncPipeline([Parallel("fan", branches={f"b{i}": step for i in range(branches)})])
        if fan == "parallel"
        else AsyncPipeline([Map("fan", iterate_on="items", iterate_as="item", branch=step)])
    )
    trio.lowlevel.add_instrument(instrument := _Exits(order))
    try:
        await _left(pipeline, branches, api)
    finally:
        trio.lowlevel.remove_instrument(instrument)
    cleanups = [i for i, what in enumerate(order) if what == "cleanup"]
    branch_exits = [i for i, what in enumerate(order) if what.startswith("exit fan.")]
    assert len(cleanups) == branches
    assert len(branch_exits) == branches
    assert max(cleanups) < min(branch_exits), order
