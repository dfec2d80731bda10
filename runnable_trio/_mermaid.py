"""A pipeline as a Mermaid flowchart (``AsyncPipeline.to_mermaid()``, ``runnable-trio graph``).

Tasks and stubs are nodes, each composite (Parallel, Map, Conditional, Loop) is a subgraph
holding one subgraph per branch, steps follow each other by arrows, an ``on_failure``
pipeline hangs off its step by a dotted arrow labelled ``on failure``, and a step that ends
the pipeline (``terminate_with_success`` / ``terminate_with_failure``) points at an end node
of that outcome. Ids are generated (``n1``, ``g2``...); every label is quoted and escaped, so
any step name is safe.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._pipeline import AsyncPipeline, BaseStep

__all__ = ["to_mermaid"]


def to_mermaid(pipeline: AsyncPipeline) -> str:
    """The Mermaid flowchart text of ``pipeline`` (ends with a newline)."""
    return _Writer().flowchart(pipeline)


def _label(text: str) -> str:
    """A quoted Mermaid label: quotes and markup characters as entity codes."""
    escaped = (
        text.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")
    )
    return f'"{escaped}"'


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.count = 0
        self.ends: set[str] = set()

    def new_id(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def emit(self, depth: int, text: str) -> None:
        self.lines.append("    " * depth + text)

    def flowchart(self, pipeline: AsyncPipeline) -> str:
        self.emit(0, "flowchart TD")
        self.emit(1, f"start([{_label(pipeline.name or 'start')}])")
        first, last = self.sequence(pipeline, 1)
        self.emit(1, f"start --> {first}")
        if last is not None:  # else every way out of the pipeline is a terminate
            self.emit(1, f"{last} --> done")
            self.emit(1, f"done([{_label('end')}])")
        for outcome in sorted(self.ends):
            self.emit(1, f"stop_{outcome}((({_label(outcome)})))")
        self.emit(1, "classDef failed fill:#fde2e2,stroke:#d43c3c")
        self.emit(1, "classDef succeeded fill:#e1f5e7,stroke:#2e9d57")
        self.emit(1, "classDef stub stroke-dasharray: 4 3")
        if "failure" in self.ends:
            self.emit(1, "class stop_failure failed")
        if "success" in self.ends:
            self.emit(1, "class stop_success succeeded")
        return "\n".join(self.lines) + "\n"

    def sequence(self, pipeline: AsyncPipeline, depth: int) -> tuple[str, str | None]:
        """Emit the steps of ``pipeline``; the first id, and the last one the flow goes on
        from (None when the last step ends the pipeline)."""
        first = ""
        previous: str | None = None
        for step in pipeline.steps:
            node = self.step(step, depth)
            if previous is not None:
                self.emit(depth, f"{previous} --> {node}")
            first = first or node
            if step.on_failure is not None:
                recovery = self.new_id("g")
                self.emit(depth, f"subgraph {recovery}[{_label(f'{step.name}: on failure')}]")
                self.emit(depth + 1, "direction TB")
                inner_first, _ = self.sequence(step.on_failure, depth + 1)
                self.emit(depth, "end")
                self.emit(depth, f"{node} -. {_label('on failure')} .-> {inner_first}")
            previous = node
            if step.terminate_with_success or step.terminate_with_failure:
                outcome = "success" if step.terminate_with_success else "failure"
                self.ends.add(outcome)
                self.emit(depth, f"{node} -- {_label('terminate')} --> stop_{outcome}")
                previous = None  # a step after this one is never reached
        return first, previous

    def step(self, step: BaseStep, depth: int) -> str:
        branches = _branches(step)
        if branches is None:
            node = self.new_id("n")
            text = step.name if step.kind == "task" else f"{step.name} ({step.kind})"
            self.emit(depth, f"{node}[{_label(text)}]")
            if step.kind == "stub":
                self.emit(depth, f"class {node} stub")
            return node
        group = self.new_id("g")
        self.emit(depth, f"subgraph {group}[{_label(_composite_title(step))}]")
        self.emit(depth + 1, "direction TB")
        for key, branch in branches:
            inner = self.new_id("g")
            self.emit(depth + 1, f"subgraph {inner}[{_label(key)}]")
            self.emit(depth + 2, "direction TB")
            self.sequence(branch, depth + 2)
            self.emit(depth + 1, "end")
        self.emit(depth, "end")
        return group


def _branches(step: BaseStep) -> Iterable[tuple[str, AsyncPipeline]] | None:
    branches: Any = getattr(step, "branches", None)
    if step.kind in ("parallel", "conditional") and isinstance(branches, Mapping):
        if step.kind == "conditional":
            parameter = getattr(step, "parameter", "?")
            return [(f"{parameter} == {key}", b) for key, b in branches.items()]
        return list(branches.items())
    branch: Any = getattr(step, "branch", None)
    if step.kind == "map" and branch is not None:
        return [(f"each {getattr(step, 'iterate_as', '?')}", branch)]
    if step.kind == "loop" and branch is not None:
        return [(f"iteration {getattr(step, 'index_as', '?')}", branch)]
    return None


def _composite_title(step: BaseStep) -> str:
    if step.kind == "map":
        return (
            f"{step.name} (map over {getattr(step, 'iterate_on', '?')} "
            f"as {getattr(step, 'iterate_as', '?')})"
        )
    if step.kind == "loop":
        return (
            f"{step.name} (loop: at most {getattr(step, 'max_iterations', '?')}, "
            f"until {getattr(step, 'break_on', '?')})"
        )
    if step.kind == "conditional":
        return f"{step.name} (conditional on {getattr(step, 'parameter', '?')})"
    return f"{step.name} ({step.kind})"
