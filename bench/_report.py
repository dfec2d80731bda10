"""Outcomes of the measurements and the Markdown table they make.

A row is one of our implementations and one metric of a case, beside the case's baselines.
Each cell is the median of the repeats with their range; a ratio is ours ÷ the baseline in
the metric's own unit (so above 1 is better for events/s, below 1 better for times and memory).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from _plan import BASELINES, PEERS, REFERENCE, TRIO, Case, Lookup, Metric, Target

__all__ = ["Outcome", "lookup_in", "render_table", "summarise_targets"]


@dataclass
class Outcome:
    """What the repeats of one implementation of one case gave."""

    values: dict[str, list[float | None]] = field(default_factory=dict)
    #: "ok"; "timeout" or "error" (``message`` says which; not repeated); "settled" (the
    #: workload saw nothing happen, e.g. no cancellation: not repeated); "skipped" (never run).
    status: str = "ok"
    message: str = ""

    def add(self, metrics: Mapping[str, float | None]) -> None:
        for key, value in metrics.items():
            self.values.setdefault(key, []).append(value)

    def figures(self, key: str) -> list[float]:
        return [v for v in self.values.get(key, []) if v is not None]

    def median(self, key: str) -> float | None:
        figures = self.figures(key)
        return statistics.median(figures) if figures else None


def lookup_in(outcomes: Mapping[tuple[str, str], Outcome]) -> Lookup:
    def lookup(case: str, impl: str, metric: str) -> float | None:
        outcome = outcomes.get((case, impl))
        return outcome.median(metric) if outcome is not None else None

    return lookup


def fmt(value: float, unit: str) -> str:
    """A figure with three significant digits in a readable unit."""
    if unit == "events/s":
        scaled = [(1e6, "M/s"), (1e3, "k/s"), (1.0, "/s")]
    elif unit == "s":
        scaled = [(1.0, "s"), (1e-3, "ms"), (1e-6, "µs")]
    else:
        scaled = [(1.0, unit)]
    for size, suffix in scaled:
        if abs(value) >= size or size == scaled[-1][0]:
            return f"{value / size:.3g} {suffix}"
    raise AssertionError("unreachable")


def _cell(outcome: Outcome | None, metric: Metric) -> str:
    if outcome is None:
        return "—"
    if outcome.status != "ok" and not outcome.values:
        return outcome.message
    values = outcome.values.get(metric.key, [])
    figures = outcome.figures(metric.key)
    if not figures:
        return metric.none_text if values else "—"
    text = fmt(statistics.median(figures), metric.unit)
    if len(figures) > 1:
        text += f" ({fmt(min(figures), metric.unit)} - {fmt(max(figures), metric.unit)})"
    if len(figures) < len(values):
        text += f"; {len(values) - len(figures)}x {metric.none_text}"
    if outcome.message:
        text += f"; then {outcome.message}"
    return text


def _ratio(ours: float | None, base: float | None) -> str:
    if ours is None or base is None or base <= 0:
        return "—"  # a baseline at or below the clock's resolution has no meaningful ratio
    ratio = ours / base
    return f"x{ratio:.2f}" if 0.01 <= ratio < 100 else f"x{ratio:.2g}"


def judge(target: Target, value: float | None, metric: Metric, lookup: Lookup) -> str:
    """The mark for one target: pass, or by how much the figure falls short."""
    limit = target.limit(lookup)
    if value is None or limit is None:
        return "n/a (not measured)"
    bound = f"{'≥' if target.at_least else '≤'} {fmt(limit, metric.unit)}"
    passed = value >= limit if target.at_least else value <= limit
    if passed:
        return f"✅ {bound}"
    gap = (1 - value / limit) if target.at_least else (value / limit - 1)
    return f"❌ {gap:.0%} short of {bound}"


def render_table(cases: Sequence[Case], outcomes: Mapping[tuple[str, str], Outcome]) -> str:
    lookup = lookup_in(outcomes)
    lines = [
        "| Workload | ours as | Metric | ours | plain Trio | plain asyncio | reference "
        "| LangGraph | pydantic-graph "
        "| ours ÷ Trio | ours ÷ ref | ours ÷ LangGraph | ours ÷ pydantic-graph | Target | Mark |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for case in cases:
        for impl in (i for i in case.impls if i.ours):
            ours = outcomes.get((case.key, impl.label))
            for metric in case.metrics:
                value = ours.median(metric.key) if ours is not None else None
                direction = "↑" if metric.higher_is_better else "↓"
                targets = case.targets.get((impl.label, metric.key), ())
                cells = [
                    case.key,
                    impl.label,
                    f"{metric.label} {direction}",
                    _cell(ours, metric),
                    *(_cell(outcomes.get((case.key, b)), metric) for b in BASELINES),
                    _ratio(value, lookup(case.key, TRIO, metric.key)),
                    _ratio(value, lookup(case.key, REFERENCE, metric.key)),
                    *(_ratio(value, lookup(case.key, peer, metric.key)) for peer in PEERS),
                    "; ".join(t.text for t in targets) or "—",
                    "; ".join(judge(t, value, metric, lookup) for t in targets) or "—",
                ]
                lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summarise_targets(cases: Sequence[Case], outcomes: Mapping[tuple[str, str], Outcome]) -> str:
    """One line per target that was not met (or could not be judged)."""
    lookup = lookup_in(outcomes)
    passed, misses = 0, []
    for case in cases:
        metrics = {m.key: m for m in case.metrics}
        for (label, key), targets in case.targets.items():
            outcome = outcomes.get((case.key, label))
            value = outcome.median(key) if outcome is not None else None
            for target in targets:
                mark = judge(target, value, metrics[key], lookup)
                if mark.startswith("✅"):
                    passed += 1
                else:
                    misses.append(f"- {case.key}, {label}, {metrics[key].label}: {mark}")
    head = f"Targets met: {passed} of {passed + len(misses)}."
    return "\n".join([head, *misses])
