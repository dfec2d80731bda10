"""W1-W7 in plain Trio: a nursery and a memory channel, no framework.

The floor the library is measured against: the same work, the same bounded buffer as the
library's default (256), no run log, no parameters, no attribution.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
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

__all__ = ["WORKLOADS"]

Event = dict[str, Any]
Producer = Callable[[trio.MemorySendChannel[Event]], Awaitable[None]]

BUFFER = 256


async def _produce(n: int) -> AsyncIterator[Event]:
    for i in range(n):
        yield {"type": "chunk", "i": i}


async def _step(x: int) -> int:
    return x + 1


async def _drain(producer: Producer) -> float:
    """Run ``producer`` in a nursery, consume its channel; the seconds until its end."""
    start = now()
    send, receive = trio.open_memory_channel[Event](BUFFER)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(producer, send)
        async with receive:
            async for _ in receive:
                pass
    return now() - start


def _forward(n: int) -> Producer:
    async def producer(send: trio.MemorySendChannel[Event]) -> None:
        async with send:
            async for event in _produce(n):
                await send.send(event)

    return producer


def w1_stream(n: int) -> dict[str, float]:
    """One producer of ``n`` events through a channel: events per second."""

    async def main() -> dict[str, float]:
        per_event, _ = await marginal(lambda count: _drain(_forward(count)), n // 10, n)
        return {"events_per_s": 1 / per_event}

    return trio.run(main)


def w2_chain(k: int) -> dict[str, float]:
    """``k`` trivial awaited calls passing ``x`` along: the marginal seconds per call."""

    def chain(length: int) -> Producer:
        async def producer(send: trio.MemorySendChannel[Event]) -> None:
            async with send:
                x = 0
                for _ in range(length):
                    x = await _step(x)

        return producer

    async def main() -> dict[str, float]:
        per_step, fixed = await marginal(lambda length: _drain(chain(length)), 1, k, repeats=7)
        return {"per_step_s": per_step, "fixed_s": fixed}

    return trio.run(main)


async def _sleepers(count: int, seconds: float, limit: int | None) -> float:
    limiter = trio.CapacityLimiter(limit) if limit else None

    async def sleeper() -> None:
        if limiter is None:
            await trio.sleep(seconds)
        else:
            async with limiter:
                await trio.sleep(seconds)

    start = now()
    async with trio.open_nursery() as nursery:
        for _ in range(count):
            nursery.start_soon(sleeper)
    return now() - start


def w3_parallel(branches: int) -> dict[str, float]:
    """``branches`` tasks each sleeping 0.2 s in one nursery: wall time."""

    async def main() -> dict[str, float]:
        await _sleepers(1, 0, None)  # warm-up, as the library's workloads have
        return {"wall_s": await _sleepers(branches, 0.2, None)}

    return trio.run(main)


def w4_map(items: int, limit: int | None) -> dict[str, float]:
    """``items`` tasks each sleeping 0.1 s, optionally under a CapacityLimiter."""

    async def main() -> dict[str, float]:
        await _sleepers(1, 0, limit)
        before = rss_mib()
        reset_peak_rss()
        wall = await _sleepers(items, 0.1, limit)
        return {"wall_s": wall, "rss_growth_mib": peak_rss_mib() - before}

    return trio.run(main)


def w5_first_event(warm_runs: int = 20) -> dict[str, float]:
    """Seconds from opening the nursery to receiving the producer's first event."""

    async def one() -> float:
        start = now()
        send, receive = trio.open_memory_channel[Event](BUFFER)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_forward(1), send)
            async with receive:
                await receive.receive()
                first = now()
                async for _ in receive:
                    pass
        return first - start

    async def main() -> dict[str, float]:
        cold = await one()
        warm = [await one() for _ in range(warm_runs + 3)][3:]
        return {"cold_s": cold, "warm_s": median(warm)}

    return trio.run(main)


def w6_cancel(branches: int, warm_runs: int = 10) -> dict[str, float | None]:
    """Cancel a nursery of ``branches`` live tasks: seconds until the last one ended.

    In the process's first run, then the median of ``warm_runs`` more.
    """

    exits: list[float] = []  # leave -> the nursery exited: every task has ended

    async def leave_once() -> float:
        finished: list[float] = []
        send, receive = trio.open_memory_channel[Event](BUFFER)

        async def live(send: trio.MemorySendChannel[Event]) -> None:
            async with send:
                await send.send({"type": "live"})
                try:
                    await trio.sleep_forever()
                finally:
                    finished.append(now())

        async with trio.open_nursery() as nursery:
            async with send:
                for _ in range(branches):
                    nursery.start_soon(live, send.clone())
            seen = 0
            async for _ in receive:
                seen += 1
                if seen == branches:
                    left = now()
                    nursery.cancel_scope.cancel()
                    break
        exits.append(now() - left)
        return max(finished) - left

    async def main() -> dict[str, float | None]:
        figures = await first_and_warm(leave_once, warm_runs, prefix="cancel")
        return {**figures, "warm_exit_s": warm_of(exits, warm_runs)}

    return trio.run(main)


def w7_slow_consumer(n: int) -> dict[str, float]:
    """``n`` events to a consumer sleeping 1 ms every 1,000: peak memory growth."""

    async def main() -> dict[str, float]:
        before = rss_mib()
        reset_peak_rss()
        start = now()
        send, receive = trio.open_memory_channel[Event](BUFFER)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_forward(n), send)
            seen = 0
            async for _ in receive:
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
