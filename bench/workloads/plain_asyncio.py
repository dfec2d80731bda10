"""W1-W8 in plain asyncio: a TaskGroup and a bounded Queue, no framework.

W8's baseline is the asyncio host's floor: iterating the same async generator directly.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from _probe import first_and_warm, marginal, median, now, peak_rss_mib, reset_peak_rss, rss_mib

__all__ = ["WORKLOADS"]

Event = dict[str, Any]
Producer = Callable[["asyncio.Queue[Event | None]"], Awaitable[None]]

BUFFER = 256


async def _produce(n: int) -> AsyncIterator[Event]:
    for i in range(n):
        yield {"type": "chunk", "i": i}


async def _step(x: int) -> int:
    return x + 1


async def _drain(producer: Producer) -> float:
    """Run ``producer`` in a TaskGroup, consume its queue to the ``None`` sentinel."""
    start = now()
    queue: asyncio.Queue[Event | None] = asyncio.Queue(BUFFER)
    async with asyncio.TaskGroup() as group:
        group.create_task(producer(queue))
        while await queue.get() is not None:
            pass
    return now() - start


def _forward(n: int) -> Producer:
    async def producer(queue: asyncio.Queue[Event | None]) -> None:
        try:
            async for event in _produce(n):
                await queue.put(event)
        finally:
            await queue.put(None)

    return producer


def w1_stream(n: int) -> dict[str, float]:
    """One producer of ``n`` events through a bounded queue: events per second."""

    async def main() -> dict[str, float]:
        per_event, _ = await marginal(lambda count: _drain(_forward(count)), n // 10, n)
        return {"events_per_s": 1 / per_event}

    return asyncio.run(main())


def w2_chain(k: int) -> dict[str, float]:
    """``k`` trivial awaited calls passing ``x`` along: the marginal seconds per call."""

    def chain(length: int) -> Producer:
        async def producer(queue: asyncio.Queue[Event | None]) -> None:
            x = 0
            for _ in range(length):
                x = await _step(x)
            await queue.put(None)

        return producer

    async def main() -> dict[str, float]:
        per_step, fixed = await marginal(lambda length: _drain(chain(length)), 1, k, repeats=7)
        return {"per_step_s": per_step, "fixed_s": fixed}

    return asyncio.run(main())


async def _sleepers(count: int, seconds: float, limit: int | None) -> float:
    semaphore = asyncio.Semaphore(limit) if limit else None

    async def sleeper() -> None:
        if semaphore is None:
            await asyncio.sleep(seconds)
        else:
            async with semaphore:
                await asyncio.sleep(seconds)

    start = now()
    async with asyncio.TaskGroup() as group:
        for _ in range(count):
            group.create_task(sleeper())
    return now() - start


def w3_parallel(branches: int) -> dict[str, float]:
    """``branches`` tasks each sleeping 0.2 s in one TaskGroup: wall time."""

    async def main() -> dict[str, float]:
        await _sleepers(1, 0, None)  # warm-up, as the library's workloads have
        return {"wall_s": await _sleepers(branches, 0.2, None)}

    return asyncio.run(main())


def w4_map(items: int, limit: int | None) -> dict[str, float]:
    """``items`` tasks each sleeping 0.1 s, optionally under a Semaphore."""

    async def main() -> dict[str, float]:
        await _sleepers(1, 0, limit)
        before = rss_mib()
        reset_peak_rss()
        wall = await _sleepers(items, 0.1, limit)
        return {"wall_s": wall, "rss_growth_mib": peak_rss_mib() - before}

    return asyncio.run(main())


def w5_first_event(warm_runs: int = 20) -> dict[str, float]:
    """Seconds from opening the TaskGroup to getting the producer's first event."""

    async def one() -> float:
        start = now()
        queue: asyncio.Queue[Event | None] = asyncio.Queue(BUFFER)
        async with asyncio.TaskGroup() as group:
            group.create_task(_forward(1)(queue))
            await queue.get()
            first = now()
            while await queue.get() is not None:
                pass
        return first - start

    async def main() -> dict[str, float]:
        cold = await one()
        warm = [await one() for _ in range(warm_runs + 3)][3:]
        return {"cold_s": cold, "warm_s": median(warm)}

    return asyncio.run(main())


def w6_cancel(branches: int, warm_runs: int = 10) -> dict[str, float | None]:
    """Cancel a TaskGroup of ``branches`` live tasks: seconds until the last one ended.

    In the process's first run, then the median of ``warm_runs`` more.
    """

    async def leave_once() -> float:
        finished: list[float] = []
        queue: asyncio.Queue[Event | None] = asyncio.Queue(BUFFER)

        async def live() -> None:
            await queue.put({"type": "live"})
            try:
                await asyncio.Event().wait()
            finally:
                finished.append(now())

        async def run() -> None:
            async with asyncio.TaskGroup() as group:
                for _ in range(branches):
                    group.create_task(live())

        runner = asyncio.create_task(run())
        for _ in range(branches):
            await queue.get()
        left = now()
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
        return max(finished) - left

    async def main() -> dict[str, float | None]:
        return await first_and_warm(leave_once, warm_runs, prefix="cancel")

    return asyncio.run(main())


def w7_slow_consumer(n: int) -> dict[str, float]:
    """``n`` events to a consumer sleeping 1 ms every 1,000: peak memory growth."""

    async def main() -> dict[str, float]:
        before = rss_mib()
        reset_peak_rss()
        start = now()
        queue: asyncio.Queue[Event | None] = asyncio.Queue(BUFFER)
        async with asyncio.TaskGroup() as group:
            group.create_task(_forward(n)(queue))
            seen = 0
            while await queue.get() is not None:
                seen += 1
                if seen % 1000 == 0:
                    await asyncio.sleep(0.001)
        return {"rss_growth_mib": peak_rss_mib() - before, "wall_s": now() - start}

    return asyncio.run(main())


def w8_asyncio_host(part: str, n: int = 0, branches: int = 0) -> dict[str, float]:
    """The asyncio floor: iterate the generator directly (``stream``), or W3's TaskGroup."""
    if part == "parallel":
        return w3_parallel(branches)

    async def consume(count: int) -> float:
        start = now()
        async for _ in _produce(count):
            pass
        return now() - start

    async def main() -> dict[str, float]:
        per_event, _ = await marginal(consume, n // 10, n)
        return {"s_per_event": per_event}

    return asyncio.run(main())


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
