"""W1-W7 on runnable_trio, written as a user of the library writes them.

Each ``wN_*`` function runs one measurement under ``trio.run`` and returns its metrics. The
run log store is the library's default unless the workload is about the store (W2).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import trio
from _probe import (
    first_and_warm,
    marginal,
    median,
    now,
    peak_rss_mib,
    reset_peak_rss,
    rss_mib,
    warm_of,
)

from runnable_trio import AsyncPipeline, AsyncPythonTask

__all__ = ["WORKLOADS"]

Event = dict[str, Any]


async def _produce(n: int) -> AsyncIterator[Event]:
    for i in range(n):
        yield {"type": "chunk", "i": i}


async def _step(x: int) -> int:
    return x + 1


async def _sleep_02() -> None:
    await trio.sleep(0.2)


async def _sleep_item(item: int) -> None:
    await trio.sleep(0.1)


async def _drain(
    pipeline: AsyncPipeline,
    api: str,
    parameters: Mapping[str, Any] | None = None,
    *,
    attribution: bool = False,
    configuration_file: str = "",
) -> float:
    """Consume a whole run; the seconds from the call to the end of the stream."""
    start = now()
    if api == "stream":
        async with pipeline.stream(
            parameters=parameters,
            attribution=attribution,
            configuration_file=configuration_file,
        ) as events:
            async for _ in events:
                pass
    else:
        async for _ in pipeline.execute_streaming(
            configuration_file, parameters=parameters, attribution=attribution
        ):
            pass
    return now() - start


def w1_stream(n: int, api: str, attribution: bool) -> dict[str, float]:
    """One task yielding ``n`` events: events per second, fixed costs excluded."""
    pipeline = AsyncPythonTask(name="produce", function=_produce).as_async_pipeline()

    async def run(count: int) -> float:
        return await _drain(pipeline, api, {"n": count}, attribution=attribution)

    async def main() -> dict[str, float]:
        per_event, _ = await marginal(run, n // 10, n)
        return {"events_per_s": 1 / per_event}

    return trio.run(main)


def _chain(k: int) -> AsyncPipeline:
    return AsyncPipeline(
        [AsyncPythonTask(name=f"s{i}", function=_step, returns=["x"]) for i in range(k)]
    )


def w2_chain(k: int, store: str) -> dict[str, float]:
    """``k`` trivial steps passing ``x`` along: the marginal seconds per step."""
    config = Path(f"bench-{store}.yaml")
    config.write_text(f"run_log_store:\n  type: {store}\n", encoding="utf-8")
    chains = {1: _chain(1), k: _chain(k)}

    async def run(length: int) -> float:
        return await _drain(
            chains[length], "execute_streaming", {"x": 0}, configuration_file=str(config)
        )

    async def main() -> dict[str, float]:
        per_step, fixed = await marginal(run, 1, k, repeats=7)
        return {"per_step_s": per_step, "fixed_s": fixed}

    return trio.run(main)


def w3_parallel(branches: int) -> dict[str, float]:
    """``branches`` branches each sleeping 0.2 s: wall time."""
    from runnable_trio import Parallel

    def fan(width: int) -> AsyncPipeline:
        task = AsyncPythonTask(name="sleep", function=_sleep_02)
        return AsyncPipeline(
            [Parallel("fan", branches={f"b{i}": task.as_async_pipeline() for i in range(width)})]
        )

    async def main() -> dict[str, float]:
        await _drain(fan(1), "execute_streaming")
        return {"wall_s": await _drain(fan(branches), "execute_streaming")}

    return trio.run(main)


def w4_map(items: int, limit: int | None) -> dict[str, float]:
    """A Map over ``items`` items each sleeping 0.1 s: wall time and peak memory growth."""
    from runnable_trio import Map

    options = {} if limit is None else {"max_concurrency": limit}
    branch = AsyncPythonTask(name="sleep", function=_sleep_item).as_async_pipeline()
    pipeline = AsyncPipeline(
        [Map("each", iterate_on="items", iterate_as="item", branch=branch, **options)]
    )
    values = list(range(items))

    async def main() -> dict[str, float]:
        await _drain(pipeline, "execute_streaming", {"items": [0]})
        before = rss_mib()
        reset_peak_rss()
        wall = await _drain(pipeline, "execute_streaming", {"items": values})
        return {"wall_s": wall, "rss_growth_mib": peak_rss_mib() - before}

    return trio.run(main)


async def _one_event() -> AsyncIterator[Event]:
    yield {"type": "first"}


async def _first_event(pipeline: AsyncPipeline, api: str, configuration_file: str) -> float:
    start = now()
    first = None
    if api == "stream":
        async with pipeline.stream(configuration_file=configuration_file) as events:
            async for _ in events:
                first = first or now()
    else:
        async for _ in pipeline.execute_streaming(configuration_file):
            first = first or now()
    assert first is not None
    return first - start


def w5_first_event(api: str, warm_runs: int = 20, store: str = "") -> dict[str, float]:
    """Seconds from the call to the first user event: the first run, then warm runs.

    ``store`` names a run log store to configure; empty: the default (the file store).
    """
    pipeline = AsyncPythonTask(name="first", function=_one_event).as_async_pipeline()
    config = ""
    if store:
        config = f"bench-{store}.yaml"
        Path(config).write_text(f"run_log_store:\n  type: {store}\n", encoding="utf-8")

    async def main() -> dict[str, float]:
        cold = await _first_event(pipeline, api, config)
        warm = [await _first_event(pipeline, api, config) for _ in range(warm_runs + 3)][3:]
        return {"cold_s": cold, "warm_s": median(warm)}

    return trio.run(main)


def w6_cancel(branches: int, api: str, warm_runs: int = 10) -> dict[str, float | None]:
    """Leave a run whose ``branches`` branches are all live: seconds until the last ended.

    In the process's first run, then the median of ``warm_runs`` more.
    """
    from runnable_trio import Parallel

    exits: list[float] = []  # stream(): leave -> the block exited, every task ended

    async def leave_once() -> float | None:
        finished: list[float] = []
        all_finished = trio.Event()

        async def live() -> AsyncIterator[Event]:
            yield {"type": "live"}
            try:
                await trio.sleep_forever()
            finally:
                finished.append(now())
                if len(finished) == branches:
                    all_finished.set()

        task = AsyncPythonTask(name="live", function=live)
        pipeline = AsyncPipeline(
            [Parallel("fan", branches={f"b{i}": task.as_async_pipeline() for i in range(branches)})]
        )
        seen = 0
        if api == "stream":
            async with pipeline.stream() as events:
                async for _ in events:
                    seen += 1
                    if seen == branches:
                        left = now()
                        break
            exits.append(now() - left)
        else:
            async for _ in pipeline.execute_streaming():
                seen += 1
                if seen == branches:
                    left = now()
                    break  # the iterator is dropped here: that must cancel the run
        with trio.move_on_after(1.0):
            await all_finished.wait()
        if not all_finished.is_set():
            return None
        return max(finished) - left

    async def main() -> dict[str, float | None]:
        figures = await first_and_warm(leave_once, warm_runs, prefix="cancel")
        if api == "stream":
            figures["warm_exit_s"] = warm_of(exits, warm_runs)
        return figures

    return trio.run(main)


def w7_slow_consumer(n: int) -> dict[str, float]:
    """``n`` events to a consumer sleeping 1 ms every 1,000: peak memory growth."""
    pipeline = AsyncPythonTask(name="produce", function=_produce).as_async_pipeline()

    async def main() -> dict[str, float]:
        before = rss_mib()
        reset_peak_rss()
        start = now()
        seen = 0
        async for _ in pipeline.execute_streaming(parameters={"n": n}):
            seen += 1
            if seen % 1000 == 0:
                await trio.sleep(0.001)
        return {"rss_growth_mib": peak_rss_mib() - before, "wall_s": now() - start}

    return trio.run(main)


WORKLOADS = {
    "W1": w1_stream,
    "W2": w2_chain,
    "W3": w3_parallel,
    "W4": w4_map,
    "W5": w5_first_event,
    "W6": w6_cancel,
    "W7": w7_slow_consumer,
}
