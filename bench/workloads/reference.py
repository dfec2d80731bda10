"""W1-W8 on the reference, runnable 0.50, run by its own virtual environment's Python.

Written as its documentation shows: parameters through ``RUNNABLE_PRM_*`` environment
variables, task functions at module level (the reference imports them by name), an explicit
``run_id`` per run (a second run in one process without one reuses the first id and fails).
Parallel has no concurrency limit, so W4's limited variant runs the same code.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from _probe import first_and_warm, marginal, median, now, peak_rss_mib, reset_peak_rss, rss_mib
from runnable import AsyncPipeline, AsyncPythonTask, Map, Parallel

__all__ = ["WORKLOADS"]

Event = dict[str, Any]

_run_ids = (f"bench-{os.getpid()}-{i}" for i in itertools.count())
_finished: list[float] = []  # W6: when each live branch's ``finally`` ran

STORES = {"memory": "buffered", "file": "file-system"}


async def produce(n: int) -> AsyncIterator[Event]:
    for i in range(n):
        yield {"type": "chunk", "i": i}


async def step(x: int) -> int:
    return x + 1


async def sleep_02() -> None:
    await asyncio.sleep(0.2)


async def sleep_item(item: int) -> None:
    await asyncio.sleep(0.1)


async def one_event() -> AsyncIterator[Event]:
    yield {"type": "first"}


async def live() -> AsyncIterator[Event]:
    yield {"type": "live"}
    try:
        await asyncio.sleep(3600)
    finally:
        _finished.append(now())


def _parameters(**values: Any) -> None:
    for name, value in values.items():
        os.environ[f"RUNNABLE_PRM_{name}"] = json.dumps(value)


async def _drain(pipeline: AsyncPipeline, configuration_file: str = "") -> float:
    start = now()
    async for _ in pipeline.execute_streaming(
        configuration_file=configuration_file, run_id=next(_run_ids)
    ):
        pass
    return now() - start


def w1_stream(n: int) -> dict[str, float]:
    """One task yielding ``n`` events: events per second, fixed costs excluded."""
    pipeline = AsyncPythonTask(name="produce", function=produce).as_async_pipeline()

    async def run(count: int) -> float:
        _parameters(n=count)
        return await _drain(pipeline)

    async def main() -> dict[str, float]:
        per_event, _ = await marginal(run, n // 10, n)
        return {"events_per_s": 1 / per_event}

    return asyncio.run(main())


def _chain(k: int) -> AsyncPipeline:
    return AsyncPipeline(
        steps=[AsyncPythonTask(name=f"s{i}", function=step, returns=["x"]) for i in range(k)]
    )


def w2_chain(k: int, store: str) -> dict[str, float]:
    """``k`` trivial steps passing ``x`` along: the marginal seconds per step."""
    config = Path(f"bench-{store}.yaml")
    config.write_text(f"run-log-store:\n  type: {STORES[store]}\n", encoding="utf-8")
    _parameters(x=0)

    async def main() -> dict[str, float]:
        # One K-step run only: it takes seconds to minutes.
        per_step, fixed = await marginal(
            lambda length: _drain(_chain(length), str(config)), 1, k, repeats=1
        )
        return {"per_step_s": per_step, "fixed_s": fixed}

    return asyncio.run(main())


def _fan(width: int, function: Any) -> AsyncPipeline:
    branches = {
        f"b{i}": AsyncPythonTask(name="task", function=function).as_async_pipeline()
        for i in range(width)
    }
    return AsyncPipeline(steps=[Parallel(name="fan", branches=branches)])


def w3_parallel(branches: int) -> dict[str, float]:
    """``branches`` branches each sleeping 0.2 s: wall time."""
    return {"wall_s": asyncio.run(_drain(_fan(branches, sleep_02)))}


def w4_map(items: int, limit: int | None) -> dict[str, float]:
    """A Map over ``items`` items each sleeping 0.1 s (``limit`` has no equivalent)."""
    branch = AsyncPythonTask(name="sleep", function=sleep_item).as_async_pipeline()
    pipeline = AsyncPipeline(
        steps=[Map(name="each", iterate_on="items", iterate_as="item", branch=branch)]
    )
    _parameters(items=list(range(items)))

    async def main() -> dict[str, float]:
        before = rss_mib()
        reset_peak_rss()
        wall = await _drain(pipeline)
        return {"wall_s": wall, "rss_growth_mib": peak_rss_mib() - before}

    return asyncio.run(main())


def w5_first_event(warm_runs: int = 20) -> dict[str, float]:
    """Seconds from the call to the first user event: the first run, then warm runs."""
    pipeline = AsyncPythonTask(name="first", function=one_event).as_async_pipeline()

    async def one() -> float:
        start = now()
        first = None
        async for _ in pipeline.execute_streaming(run_id=next(_run_ids)):
            first = first or now()
        assert first is not None
        return first - start

    async def main() -> dict[str, float]:
        cold = await one()
        warm = [await one() for _ in range(warm_runs + 3)][3:]
        return {"cold_s": cold, "warm_s": median(warm)}

    return asyncio.run(main())


def w6_cancel(branches: int, warm_runs: int = 10) -> dict[str, float | None]:
    """Leave a run of ``branches`` live branches after its first event.

    The reference runs branches one at a time, so only one is ever live; leaving does not
    cancel it, which shows as no result within a second (and no warm runs: there is no
    figure to repeat).
    """
    pipeline = _fan(branches, live)

    async def leave_once() -> float | None:
        _finished.clear()
        async for _ in pipeline.execute_streaming(run_id=next(_run_ids)):
            left = now()
            break
        for _ in range(100):
            if _finished:
                return _finished[-1] - left
            await asyncio.sleep(0.01)
        return None

    async def main() -> dict[str, float | None]:
        return await first_and_warm(leave_once, warm_runs, prefix="cancel")

    return asyncio.run(main())


def w7_slow_consumer(n: int) -> dict[str, float]:
    """``n`` events to a consumer sleeping 1 ms every 1,000: peak memory growth."""
    pipeline = AsyncPythonTask(name="produce", function=produce).as_async_pipeline()
    _parameters(n=n)

    async def main() -> dict[str, float]:
        before = rss_mib()
        reset_peak_rss()
        start = now()
        seen = 0
        async for _ in pipeline.execute_streaming(run_id=next(_run_ids)):
            seen += 1
            if seen % 1000 == 0:
                await asyncio.sleep(0.001)
        return {"rss_growth_mib": peak_rss_mib() - before, "wall_s": now() - start}

    return asyncio.run(main())


def w8_asyncio_host(part: str, n: int = 0, branches: int = 0) -> dict[str, float]:
    """The reference is an asyncio library: W1 per event, or W3."""
    if part == "parallel":
        return w3_parallel(branches)
    return {"s_per_event": 1 / w1_stream(n)["events_per_s"]}


WORKLOADS = {
    "W1": w1_stream,
    "W2": w2_chain,
    "W3": w3_parallel,
    "W4": w4_map,
    "W5": w5_first_event,
    "W6": w6_cancel,
    "W7": w7_slow_consumer,
    "W8": w8_asyncio_host,
}
