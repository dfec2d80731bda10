"""W1-W6 on LangGraph, run by its own virtual environment's Python.

Written as LangGraph's documentation writes them: a ``StateGraph`` of async nodes over a
``TypedDict`` state, compiled once; events from inside a node through ``get_stream_writer()``
and consumed with ``astream(stream_mode="custom")``; a chain as nodes joined by edges; a
fan-out as edges from ``START`` to every branch; a map as ``Send`` per item from a conditional
edge. No checkpointer: the graph keeps its state in memory only, LangGraph's lightest set-up,
so both of our stores are compared against the same run.
"""

from __future__ import annotations

import asyncio
import operator
from contextlib import aclosing
from typing import Annotated, Any, TypedDict

from _probe import first_and_warm, marginal, median, now, peak_rss_mib, reset_peak_rss, rss_mib
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

__all__ = ["WORKLOADS"]


class Count(TypedDict):
    n: int


class Chain(TypedDict):
    x: int


class Done(TypedDict, total=False):
    items: list[int]
    done: Annotated[list[int], operator.add]


class Item(TypedDict):
    item: int


async def produce(state: Count) -> dict[str, Any]:
    write = get_stream_writer()
    for i in range(state["n"]):
        write({"type": "chunk", "i": i})
    return {}


async def step(state: Chain) -> dict[str, Any]:
    return {"x": state["x"] + 1}


async def sleep_02(state: Done) -> dict[str, Any]:
    await asyncio.sleep(0.2)
    return {"done": [1]}


async def sleep_item(state: Item) -> dict[str, Any]:
    await asyncio.sleep(0.1)
    return {"done": [state["item"]]}


async def one_event(state: Count) -> dict[str, Any]:
    get_stream_writer()({"type": "first"})
    return {}


def _single(node: Any, state: type) -> Any:
    return StateGraph(state).add_node("node", node).add_edge(START, "node").compile()


async def _drain(graph: Any, state: dict[str, Any]) -> float:
    start = now()
    async for _ in graph.astream(state, stream_mode="custom"):
        pass
    return now() - start


def w1_stream(n: int) -> dict[str, float]:
    """One node writing ``n`` custom events: events per second, fixed costs excluded."""
    graph = _single(produce, Count)

    async def main() -> dict[str, float]:
        per_event, _ = await marginal(lambda count: _drain(graph, {"n": count}), n // 10, n)
        return {"events_per_s": 1 / per_event}

    return asyncio.run(main())


def _chain(k: int) -> Any:
    builder = StateGraph(Chain)
    previous = START
    for i in range(k):
        builder.add_node(f"s{i}", step)
        builder.add_edge(previous, f"s{i}")
        previous = f"s{i}"
    builder.add_edge(previous, END)
    return builder.compile()


def w2_chain(k: int, store: str = "memory") -> dict[str, float]:
    """``k`` nodes in a row passing ``x`` along: the marginal seconds per node.

    ``store`` is ignored: the graph has no checkpointer whatever our store.
    """
    graphs = {1: _chain(1), k: _chain(k)}

    async def run(length: int) -> float:
        start = now()
        await graphs[length].ainvoke({"x": 0}, {"recursion_limit": length + 10})
        return now() - start

    async def main() -> dict[str, float]:
        per_step, fixed = await marginal(run, 1, k, repeats=7)
        return {"per_step_s": per_step, "fixed_s": fixed}

    return asyncio.run(main())


def _fan(width: int, node: Any) -> Any:
    builder = StateGraph(Done)
    for i in range(width):
        builder.add_node(f"b{i}", node)
        builder.add_edge(START, f"b{i}")
    return builder.compile()


def w3_parallel(branches: int) -> dict[str, float]:
    """``branches`` nodes from START, each sleeping 0.2 s: wall time."""
    graphs = {1: _fan(1, sleep_02), branches: _fan(branches, sleep_02)}

    async def run(width: int) -> float:
        start = now()
        await graphs[width].ainvoke({"done": []})
        return now() - start

    async def main() -> dict[str, float]:
        await run(1)
        return {"wall_s": await run(branches)}

    return asyncio.run(main())


def _each(state: Done) -> list[Send]:
    return [Send("item", {"item": item}) for item in state["items"]]


def w4_map(items: int, limit: int | None = None) -> dict[str, float]:
    """A ``Send`` per item to a node sleeping 0.1 s; ``max_concurrency`` in the config."""
    builder = StateGraph(Done)
    builder.add_node("item", sleep_item)
    builder.add_conditional_edges(START, _each, ["item"])
    graph = builder.compile()
    config: dict[str, Any] = {} if limit is None else {"max_concurrency": limit}

    async def main() -> dict[str, float]:
        await graph.ainvoke({"items": [0], "done": []}, config)
        before = rss_mib()
        reset_peak_rss()
        start = now()
        await graph.ainvoke({"items": list(range(items)), "done": []}, config)
        wall = now() - start
        return {"wall_s": wall, "rss_growth_mib": peak_rss_mib() - before}

    return asyncio.run(main())


def w5_first_event(warm_runs: int = 20) -> dict[str, float]:
    """Seconds from the call to the first custom event: the first run, then warm runs."""
    graph = _single(one_event, Count)

    async def one() -> float:
        start = now()
        first = None
        async for _ in graph.astream({"n": 1}, stream_mode="custom"):
            first = first or now()
        assert first is not None
        return first - start

    async def main() -> dict[str, float]:
        cold = await one()
        warm = [await one() for _ in range(warm_runs + 3)][3:]
        return {"cold_s": cold, "warm_s": median(warm)}

    return asyncio.run(main())


def w6_cancel(branches: int, warm_runs: int = 10) -> dict[str, float | None]:
    """Leave the stream of ``branches`` live nodes after the last one's event.

    In the process's first run, then the median of ``warm_runs`` more.
    """
    finished: list[float] = []
    all_finished = asyncio.Event()

    async def live(state: Done) -> dict[str, Any]:
        get_stream_writer()({"type": "live"})
        try:
            await asyncio.Event().wait()
        finally:
            finished.append(now())
            if len(finished) == branches:
                all_finished.set()
        return {}

    graph = _fan(branches, live)

    async def leave_once() -> float | None:
        finished.clear()
        all_finished.clear()
        seen = 0
        left = now()
        async with aclosing(graph.astream({"done": []}, stream_mode="custom")) as events:
            async for _ in events:
                seen += 1
                if seen == branches:
                    left = now()
                    break
        try:
            await asyncio.wait_for(all_finished.wait(), 1.0)
        except TimeoutError:
            return None
        return max(finished) - left

    async def main() -> dict[str, float | None]:
        return await first_and_warm(leave_once, warm_runs, prefix="cancel")

    return asyncio.run(main())


WORKLOADS = {
    "W1": w1_stream,
    "W2": w2_chain,
    "W3": w3_parallel,
    "W4": w4_map,
    "W5": w5_first_event,
    "W6": w6_cancel,
}
