"""What is measured: cases (a workload with its sizes), implementations, metrics, targets.

A case runs every implementation it lists, each in a fresh process. Our implementations
(``ours``, ``compat``) may appear several times with different options (``execute_streaming``
and ``stream()``...); each becomes a row of the table, beside the same baselines. Targets are
the project's performance targets, attached to a row and metric; a target may compare against
another figure of the same run (the reference's, plain Trio's, a smaller size's).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = ["BASELINES", "Case", "Impl", "Lookup", "Metric", "Target", "plan"]

#: ``lookup(case key, implementation label, metric key)``: that figure's median, or None.
Lookup = Callable[[str, str, str], float | None]

TRIO, ASYNCIO, REFERENCE = "plain Trio", "plain asyncio", "reference"
LANGGRAPH, PYDANTIC_GRAPH = "LangGraph", "pydantic-graph"
PEERS = (LANGGRAPH, PYDANTIC_GRAPH)
BASELINES = (TRIO, ASYNCIO, REFERENCE, *PEERS)
#: Left out of --quick: the reference where it runs sequentially (its figures take seconds or
#: time out at any size), plain asyncio where its figure is near zero.
QUICK_LEAVES_OUT = {
    "W2": (REFERENCE, ASYNCIO),
    "W3": (REFERENCE,),
    "W4": (REFERENCE,),
    "W6": (REFERENCE,),
}


@dataclass(frozen=True)
class Impl:
    """One implementation of a case: a ``workloads/`` module and its extra arguments."""

    label: str
    module: str
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ours(self) -> bool:
        return self.module in ("ours", "compat")


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str  # "events/s", "s" or "MiB"
    higher_is_better: bool = False
    #: How a None figure reads (the workload saw nothing happen in its wait).
    none_text: str = "none"


@dataclass(frozen=True)
class Target:
    """A bound on one figure: ``limit(lookup)`` is the bound, None if it cannot be known."""

    text: str
    limit: Callable[[Lookup], float | None]
    at_least: bool = False


@dataclass(frozen=True)
class Case:
    key: str
    workload: str
    params: Mapping[str, Any]
    impls: tuple[Impl, ...]
    metrics: tuple[Metric, ...]
    #: Targets by (our implementation's label, metric key).
    targets: Mapping[tuple[str, str], tuple[Target, ...]] = field(default_factory=dict)
    #: Cases of one group differ only in size (``scale``): an implementation that timed out
    #: at one size is not run at larger ones.
    group: str = ""
    scale: int = 0


def _of(
    case: str, impl: str, metric: str, factor: float = 1.0, plus: float = 0.0
) -> Callable[[Lookup], float | None]:
    def limit(lookup: Lookup) -> float | None:
        base = lookup(case, impl, metric)
        return None if base is None else base * factor + plus

    return limit


_BASE = (Impl(TRIO, "plain_trio"), Impl(ASYNCIO, "plain_asyncio"), Impl(REFERENCE, "reference"))
#: The peers a user would pick instead, each in its own virtual environment (_peerenv.py).
_PEERS = (Impl(LANGGRAPH, "peer_langgraph"), Impl(PYDANTIC_GRAPH, "peer_pydantic_graph"))
_ALL = _BASE + _PEERS

EVENTS_PER_S = Metric("events_per_s", "events/s (marginal)", "events/s", higher_is_better=True)
PER_STEP = Metric("per_step_s", "per step (marginal)", "s")
FIXED = Metric("fixed_s", "one-step run", "s")
WALL = Metric("wall_s", "wall time", "s")
RSS = Metric("rss_growth_mib", "peak RSS growth", "MiB")


def _w1(n: int) -> Case:
    key = f"W1 stream N={n:,}"
    ours = {
        "execute_streaming": {"api": "execute_streaming", "attribution": False},
        "stream()": {"api": "stream", "attribution": False},
        "execute_streaming, attribution": {"api": "execute_streaming", "attribution": True},
        "stream(), attribution": {"api": "stream", "attribution": True},
    }
    rate = EVENTS_PER_S.key

    def at_least(factor: float, base: str) -> Target:
        return Target(f"≥ {factor:g}x {base}", _of(key, base, rate, factor), at_least=True)

    plain, attributed = (at_least(6, TRIO), at_least(8, LANGGRAPH)), (at_least(4, TRIO),)
    return Case(
        key,
        "W1",
        {"n": n},
        tuple(Impl(label, "ours", params) for label, params in ours.items()) + _ALL,
        (EVENTS_PER_S,),
        {
            ("execute_streaming", rate): plain,
            ("stream()", rate): plain,
            ("execute_streaming, attribution", rate): attributed,
            ("stream(), attribution", rate): attributed,
        },
    )


def _w2(k: int, store: str, flat_from: int | None) -> Case:
    key = f"W2 chain K={k}, {store} store"
    step = PER_STEP.key
    if store == "memory":
        targets = [
            Target("≤ 1/30 LangGraph", _of(key, LANGGRAPH, step, 1 / 30)),
            Target("≤ 1/15 pydantic-graph", _of(key, PYDANTIC_GRAPH, step, 1 / 15)),
        ]
    else:
        targets = [Target("≤ 1/10 LangGraph", _of(key, LANGGRAPH, step, 1 / 10))]
    if flat_from is not None and k >= 5000:
        smaller = f"W2 chain K={flat_from}, {store} store"
        targets.append(Target(f"≤ 1.1x K={flat_from}", _of(smaller, "ours", step, 1.1)))
    return Case(
        key,
        "W2",
        {"k": k},
        (
            Impl("ours", "ours", {"store": store}),
            Impl(TRIO, "plain_trio"),
            Impl(ASYNCIO, "plain_asyncio"),
            Impl(REFERENCE, "reference", {"store": store}),
            *_PEERS,
        ),
        (PER_STEP, FIXED),
        {("ours", step): tuple(targets)},
        group=f"W2 {store}",
        scale=k,
    )


def _w3(branches: int) -> Case:
    key = f"W3 parallel B={branches:,}"
    targets: dict[tuple[str, str], tuple[Target, ...]] = {}
    if branches == 1000:
        bound = Target("≤ 1.05x plain Trio", _of(key, TRIO, WALL.key, 1.05))
        targets[("ours", WALL.key)] = (bound,)
    return Case(
        key,
        "W3",
        {"branches": branches},
        (Impl("ours", "ours"), *_ALL),
        (WALL,),
        targets,
        group="W3",
        scale=branches,
    )


def _w4(items: int, limit: int | None) -> Case:
    key = f"W4 map M={items:,}" + (f", max_concurrency={limit}" if limit else "")
    targets: dict[tuple[str, str], tuple[Target, ...]] = {}
    if items >= 10_000 and limit is None:
        for metric in (WALL, RSS):
            bound = Target("≤ 1.5x plain Trio", _of(key, TRIO, metric.key, 1.5))
            targets[("ours", metric.key)] = (bound,)
    return Case(
        key,
        "W4",
        {"items": items, "limit": limit},
        (Impl("ours", "ours"), *_ALL),
        (WALL, RSS),
        targets,
        group=f"W4 limit={limit}",
        scale=items,
    )


def _w5(warm_runs: int) -> Case:
    key = "W5 first event"
    cold = Metric("cold_s", "first event, first run", "s")
    warm = Metric("warm_s", f"first event, warm (median of {warm_runs})", "s")
    file_store = (Target("≤ 5x plain Trio", _of(key, TRIO, warm.key, 5)),)
    memory_store = (Target("≤ 3x plain Trio", _of(key, TRIO, warm.key, 3)),)
    first_run = (Target("≤ 0.5x LangGraph", _of(key, LANGGRAPH, cold.key, 0.5)),)
    return Case(
        key,
        "W5",
        {"warm_runs": warm_runs},
        (
            Impl("execute_streaming", "ours", {"api": "execute_streaming"}),
            Impl("stream()", "ours", {"api": "stream"}),
            Impl(
                "execute_streaming, memory store",
                "ours",
                {"api": "execute_streaming", "store": "memory"},
            ),
            *_ALL,
        ),
        (cold, warm),
        {
            ("execute_streaming", warm.key): file_store,
            ("stream()", warm.key): file_store,
            ("execute_streaming, memory store", warm.key): memory_store,
            ("execute_streaming", cold.key): first_run,
            ("stream()", cold.key): first_run,
        },
    )


def _w6(branches: int, warm_runs: int) -> Case:
    key = f"W6 cancel {branches} live branches"
    none_text = "not ended 1 s after leaving"
    first = Metric("cancel_s", "leave → last branch ended, first run", "s", none_text=none_text)
    warm = Metric(
        "warm_cancel_s",
        f"leave → last branch ended, warm (median of {warm_runs})",
        "s",
        none_text=none_text,
    )
    # Where the surface has a point at which every task has ended (a nursery's exit, the
    # stream() block's): the last user `finally` comes before it, and how long before
    # differs (plain Trio's tasks each pass one more checkpoint after theirs).
    exited = Metric(
        "warm_exit_s", f"leave → block exited (every task ended), warm (median of {warm_runs})", "s"
    )
    # The target is the steady state (as W3 and W4 measure after a warm-up run); the first
    # run of a process also pays one-off costs (imports, the first code-identity probe),
    # shown on its own row.
    within = (Target("≤ 1.1x plain Trio", _of(key, TRIO, warm.key, 1.1)),)
    # DESIGN.md's words, "every task ended": where both surfaces have that point, it is
    # marked too (break out of execute_streaming() has none the consumer can see).
    all_ended = (Target("≤ 1.1x plain Trio", _of(key, TRIO, exited.key, 1.1)),)
    return Case(
        key,
        "W6",
        {"branches": branches, "warm_runs": warm_runs},
        (
            Impl("execute_streaming, break", "ours", {"api": "execute_streaming"}),
            Impl("stream(), leave block", "ours", {"api": "stream"}),
            *_ALL,
        ),
        (first, warm, exited),
        {
            ("execute_streaming, break", warm.key): within,
            ("stream(), leave block", warm.key): within,
            ("stream(), leave block", exited.key): all_ended,
        },
    )


def _w7(n: int, flat_from: int | None) -> Case:
    targets: dict[tuple[str, str], tuple[Target, ...]] = {}
    if flat_from is not None:
        smaller = f"W7 slow consumer N={flat_from:,}"
        targets[("ours", RSS.key)] = (
            Target(f"flat: ≤ N={flat_from:,} + 2 MiB", _of(smaller, "ours", RSS.key, plus=2.0)),
        )
    return Case(
        f"W7 slow consumer N={n:,}",
        "W7",
        {"n": n},
        (Impl("ours", "ours"), *_BASE),
        (RSS, WALL),
        targets,
        group="W7",
        scale=n,
    )


def _w8_stream(n: int) -> Case:
    key = f"W8 asyncio host, stream N={n:,}"
    metric = Metric("s_per_event", "per event (marginal)", "s")
    trio_host = _of(f"W1 stream N={n:,}", "execute_streaming", EVENTS_PER_S.key)

    def half_the_trio_hosts_rate(lookup: Lookup) -> float | None:
        # DESIGN.md: events/s on an asyncio host >= 0.5x the same stream's on a Trio host (W1's
        # execute_streaming row of this run), i.e. at most twice its seconds per event.
        rate = trio_host(lookup)
        return None if not rate else 2 / rate

    return Case(
        key,
        "W8",
        {"part": "stream", "n": n},
        (
            Impl("compat, asyncio.run", "compat"),
            Impl(ASYNCIO, "plain_asyncio"),
            Impl(REFERENCE, "reference"),
        ),
        (metric,),
        {
            ("compat, asyncio.run", metric.key): (
                Target("≥ 0.5x the Trio host's events/s (W1)", half_the_trio_hosts_rate),
            )
        },
    )


def _w8_parallel(branches: int) -> Case:
    key = f"W8 asyncio host, parallel B={branches:,}"
    targets: dict[tuple[str, str], tuple[Target, ...]] = {}
    if branches == 1000:
        # DESIGN.md's fan-out target (Parallel of 1,000 <= 1.05x plain Trio) on the asyncio
        # host, where the plain equivalent is plain asyncio's TaskGroup.
        bound = Target("≤ 1.05x plain asyncio", _of(key, ASYNCIO, WALL.key, 1.05))
        targets[("compat, asyncio.run", WALL.key)] = (bound,)
    return Case(
        key,
        "W8",
        {"part": "parallel", "branches": branches},
        (Impl("compat, asyncio.run", "compat"), Impl(ASYNCIO, "plain_asyncio")),
        (WALL,),
        targets,
        group="W8 parallel",
        scale=branches,
    )


def plan(quick: bool) -> list[Case]:
    """Every case, smaller sizes first (so a timeout can spare the larger ones)."""
    if quick:
        steps, branches, stream_n, slow_n = (50, 500), (10, 1000), 20_000, (10_000, 50_000)
        maps: tuple[tuple[int, int | None], ...] = ((100, None), (10_000, None), (1000, 100))
        w8_branches: tuple[int, ...] = (1000,)
    else:
        steps, branches, stream_n, slow_n = (
            (50, 500, 5000),
            (10, 100, 1000),
            100_000,
            (100_000, 1_000_000),
        )
        maps = (
            (100, None),
            (1000, None),
            (10_000, None),
            (100_000, None),
            (1000, 100),
            (10_000, 100),
        )
        w8_branches = (10, 100, 1000)
    cases = [_w1(stream_n)]
    for store in ("memory", "file"):
        cases += [_w2(k, store, steps[0] if k != steps[0] else None) for k in steps]
    cases += [_w3(b) for b in branches]
    cases += [_w4(items, limit) for items, limit in maps]
    cases += [_w5(10 if quick else 20), _w6(100, 5 if quick else 10)]
    cases += [_w7(n, slow_n[0] if n != slow_n[0] else None) for n in slow_n]
    cases += [_w8_stream(stream_n)] + [_w8_parallel(b) for b in w8_branches]
    if quick:
        cases = [
            replace(
                c, impls=tuple(i for i in c.impls if i.label not in QUICK_LEAVES_OUT[c.workload])
            )
            if c.workload in QUICK_LEAVES_OUT
            else c
            for c in cases
        ]
    return cases
