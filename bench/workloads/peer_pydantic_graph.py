"""W1-W6 on pydantic-graph, run by its own virtual environment's Python under ``trio.run``.

Written with its current graph API (``GraphBuilder``: ``@g.step`` functions taking a
``StepContext``, edges added with ``g.edge_from(...).to(...)``, a broadcast to many steps or
``.map()`` over an iterable, joined by ``g.join(reducer)``), built once and run with
``await graph.run(...)``. pydantic-graph runs on anyio, so Trio is its event loop here.
A graph gives its caller only its output, no stream of events: events leave a step the way
its users do it, through a Trio memory channel handed to the steps as ``deps`` (buffer 256,
as plain Trio's and the library's default).
"""

from __future__ import annotations

import itertools
from typing import Any

import trio
from _probe import first_and_warm, marginal, median, now, peak_rss_mib, reset_peak_rss, rss_mib
from pydantic_graph import GraphBuilder, StepContext, reduce_null

__all__ = ["WORKLOADS"]

Event = dict[str, Any]
Send = trio.MemorySendChannel[Event]
BUFFER = 256


def _streaming(function: Any) -> Any:
    """A one-step graph whose step gets the channel as deps and an int as input."""
    g = GraphBuilder(deps_type=Send, input_type=int, output_type=type(None))
    step = g.step(function, node_id="step")
    g.add(g.edge_from(g.start_node).to(step), g.edge_from(step).to(g.end_node))
    return g.build()


async def produce(ctx: StepContext[None, Send, int]) -> None:
    for i in range(ctx.inputs):
        await ctx.deps.send({"type": "chunk", "i": i})


async def one_event(ctx: StepContext[None, Send, int]) -> None:
    await ctx.deps.send({"type": "first"})


async def _drain(graph: Any, inputs: int) -> float:
    start = now()
    send, receive = trio.open_memory_channel[Event](BUFFER)

    async def run() -> None:
        async with send:
            await graph.run(deps=send, inputs=inputs)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run)
        async with receive:
            async for _ in receive:
                pass
    return now() - start


def w1_stream(n: int) -> dict[str, float]:
    """One step sending ``n`` events: events per second, fixed costs excluded."""
    graph = _streaming(produce)

    async def main() -> dict[str, float]:
        per_event, _ = await marginal(lambda count: _drain(graph, count), n // 10, n)
        return {"events_per_s": 1 / per_event}

    return trio.run(main)


async def step(ctx: StepContext[None, None, int]) -> int:
    return ctx.inputs + 1


def _chain(k: int) -> Any:
    g = GraphBuilder(input_type=int, output_type=int)
    steps = [g.step(step, node_id=f"s{i}") for i in range(k)]
    g.add(g.edge_from(g.start_node).to(steps[0]), g.edge_from(steps[-1]).to(g.end_node))
    g.add(*(g.edge_from(a).to(b) for a, b in itertools.pairwise(steps)))
    return g.build()


def w2_chain(k: int, store: str = "memory") -> dict[str, float]:
    """``k`` steps in a row passing ``x`` along: the marginal seconds per step.

    ``store`` is ignored: pydantic-graph keeps no record of a run.
    """
    graphs = {1: _chain(1), k: _chain(k)}

    async def run(length: int) -> float:
        start = now()
        await graphs[length].run(inputs=0)
        return now() - start

    async def main() -> dict[str, float]:
        per_step, fixed = await marginal(run, 1, k, repeats=7)
        return {"per_step_s": per_step, "fixed_s": fixed}

    return trio.run(main)


async def sleep_02(ctx: StepContext[None, None, None]) -> None:
    await trio.sleep(0.2)


def _fan(width: int, function: Any) -> Any:
    g = GraphBuilder(deps_type=Any, output_type=type(None))
    steps = [g.step(function, node_id=f"b{i}") for i in range(width)]
    done = g.join(reduce_null, initial=None)
    g.add(
        g.edge_from(g.start_node).to(*steps),
        g.edge_from(*steps).to(done),
        g.edge_from(done).to(g.end_node),
    )
    return g.build()


def w3_parallel(branches: int) -> dict[str, float]:
    """A broadcast to ``branches`` steps each sleeping 0.2 s: wall time."""
    graphs = {1: _fan(1, sleep_02), branches: _fan(branches, sleep_02)}

    async def run(width: int) -> float:
        start = now()
        await graphs[width].run()
        return now() - start

    async def main() -> dict[str, float]:
        await run(1)
        return {"wall_s": await run(branches)}

    return trio.run(main)


async def sleep_item(ctx: StepContext[None, None, int]) -> None:
    await trio.sleep(0.1)


def w4_map(items: int, limit: int | None = None) -> dict[str, float]:
    """``.map()`` over ``items`` items to a step sleeping 0.1 s (no concurrency limit)."""
    g = GraphBuilder(input_type=list[int], output_type=type(None))
    item = g.step(sleep_item, node_id="item")
    done = g.join(reduce_null, initial=None)
    g.add(
        g.edge_from(g.start_node).map().to(item),
        g.edge_from(item).to(done),
        g.edge_from(done).to(g.end_node),
    )
    graph = g.build()

    async def main() -> dict[str, float]:
        await graph.run(inputs=[0])
        before = rss_mib()
        reset_peak_rss()
        start = now()
        await graph.run(inputs=list(range(items)))
        wall = now() - start
        return {"wall_s": wall, "rss_growth_mib": peak_rss_mib() - before}

    return trio.run(main)


def w5_first_event(warm_runs: int = 20) -> dict[str, float]:
    """Seconds from the call to the step's first event: the first run, then warm runs."""
    graph = _streaming(one_event)

    async def one() -> float:
        start = now()
        first = None
        send, receive = trio.open_memory_channel[Event](BUFFER)

        async def run() -> None:
            async with send:
                await graph.run(deps=send, inputs=1)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(run)
            async with receive:
                async for _ in receive:
                    first = first or now()
        assert first is not None
        return first - start

    async def main() -> dict[str, float]:
        cold = await one()
        warm = [await one() for _ in range(warm_runs + 3)][3:]
        return {"cold_s": cold, "warm_s": median(warm)}

    return trio.run(main)


def w6_cancel(branches: int, warm_runs: int = 10) -> dict[str, float | None]:
    """Cancel a run of ``branches`` live steps after the last one's event.

    In the process's first run, then the median of ``warm_runs`` more.
    """
    finished: list[float] = []

    async def leave_once() -> float | None:
        finished.clear()
        all_finished = trio.Event()

        async def live(ctx: StepContext[None, Send, None]) -> None:
            await ctx.deps.send({"type": "live"})
            try:
                await trio.sleep_forever()
            finally:
                finished.append(now())
                if len(finished) == branches:
                    all_finished.set()

        graph = _fan(branches, live)
        send, receive = trio.open_memory_channel[Event](BUFFER)
        left = now()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: graph.run(deps=send))
            seen = 0
            async for _ in receive:
                seen += 1
                if seen == branches:
                    left = now()
                    nursery.cancel_scope.cancel()  # the caller leaves: cancel the run
                    break
        with trio.move_on_after(1.0):
            await all_finished.wait()
        if not all_finished.is_set():
            return None
        return max(finished) - left

    async def main() -> dict[str, float | None]:
        return await first_and_warm(leave_once, warm_runs, prefix="cancel")

    return trio.run(main)


WORKLOADS = {
    "W1": w1_stream,
    "W2": w2_chain,
    "W3": w3_parallel,
    "W4": w4_map,
    "W5": w5_first_event,
    "W6": w6_cancel,
}
