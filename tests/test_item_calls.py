"""A Map item and a Parallel branch cost few calls of the library's own functions.

A Map over 100,000 items runs each of these calls 100,000 times, and each Python-level call
is a frame made and dropped (a thousand instructions or so, before its body): a change that
adds one per item (a helper, a property, a generator resumed) fails here rather than in a
benchmark. The figure is a slope (the calls at two sizes), so what a run does once, whatever
its size, does not blur it; only frames of ``runnable_trio`` are counted (Trio's own work is
a plain Trio task's too).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio

from runnable_trio import AsyncPipeline, AsyncPythonTask, Map, MemoryRunLogStore, Parallel
from runnable_trio.testing import RunResult, run_to_end

from .helpers import library_calls

SIZES = (100, 300)

#: The library's calls per item of a Map of one plain task returning nothing, on the file
#: store: run_alone (started and resumed: 2), the item's scope made (its __init__, called by
#: a map in C) and its arguments bound (2: the item alone, no bind_item), its two records
#: (first_attempt_records, their fields set there, no attrs __init__: 1), the journal line
#: (append_step, a plain call, no step_finished coroutine; journal_lines, its text written
#: there, the two times in one _period call, the append: about 4), the text kept for the
#: final record (1).
#: The branch's record is made without its class's __init__ too, the attempt's end is inline
#: in run_alone, the function is called there as it is (no _call_coroutine), and the final
#: record is written in a worker thread (not counted). Measured: 10.6.
FILE_STORE_CALLS = 11
#: The same without the journal line and the kept text (the memory store's step_finished is
#: not called). Measured: 4.9.
MEMORY_STORE_CALLS = 5
#: A Parallel branch of one such task, on the file store: as a Map item's, but for its scope
#: (Scope.branches resumed: 1, not a generator expression's and two calls) and its
#: arguments (none bound: the function takes no parameter), less the arguments' values in
#: its journal line (it has none). The fan-out asks what runs it inline. Measured: 9.2.
PARALLEL_BRANCH_CALLS = 9


async def _item(item: int) -> None:
    await trio.lowlevel.checkpoint()


async def _calls(run: Callable[[], Awaitable[RunResult]]) -> int:
    with library_calls() as calls:
        result = await run()
    assert result.cause is None
    return calls[0]


def _slope(counts: list[int]) -> float:
    small, big = counts
    return (big - small) / (SIZES[1] - SIZES[0])


async def _calls_per_item(store: Any) -> float:
    branch = AsyncPythonTask("each_item", _item).as_async_pipeline()
    pipeline = AsyncPipeline([Map("each", iterate_on="items", iterate_as="item", branch=branch)])
    extra = {} if store is None else {"store": store}
    return _slope(
        [
            await _calls(
                functools.partial(
                    run_to_end, pipeline, parameters={"items": list(range(items))}, **extra
                )
            )
            for items in SIZES
        ]
    )


@pytest.mark.parametrize(
    ("store", "most"), [(None, FILE_STORE_CALLS), (MemoryRunLogStore(), MEMORY_STORE_CALLS)]
)
async def test_a_map_item_makes_few_calls_of_the_library(store: Any, most: int) -> None:
    per_item = await _calls_per_item(store)
    assert round(per_item) <= most, f"a Map item makes {per_item:.2f} calls of runnable_trio"


async def test_a_parallel_branch_makes_few_calls_of_the_library() -> None:
    async def branch() -> None:
        await trio.lowlevel.checkpoint()

    task = AsyncPythonTask("one", branch)
    counts = []
    for width in SIZES:
        pipeline = AsyncPipeline(
            [Parallel("fan", branches={f"b{i}": task.as_async_pipeline() for i in range(width)})]
        )
        await run_to_end(pipeline)  # the pipeline's definition is described on its first run
        counts.append(await _calls(functools.partial(run_to_end, pipeline)))
    per_branch = _slope(counts)
    assert round(per_branch) <= PARALLEL_BRANCH_CALLS, (
        f"a Parallel branch makes {per_branch:.2f} calls of runnable_trio"
    )
