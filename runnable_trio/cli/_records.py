"""``runs`` (the recorded runs, newest first) and ``show`` (one record as a tree)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import attrs
from rich.console import Console
from rich.markup import escape
from rich.tree import Tree

from .._jsoncodec import dumps
from .._runlog import Attempt, RunLog, Status, StepLog, run_log_to_dict
from .._store import RunSummary
from ._stores import load_run, open_store, summaries
from ._text import duration

__all__ = ["print_run", "print_runs"]

STYLES = {
    Status.SUCCESS: "green",
    Status.FAIL: "bold red",
    Status.PROCESSING: "yellow",
    Status.CANCELLED: "magenta",
}
MARKS = {Status.SUCCESS: "✓", Status.FAIL: "✗", Status.PROCESSING: "●", Status.CANCELLED: "⊘"}


def print_runs(config: str, status: str | None, limit: int | None, as_json: bool) -> int:
    found = summaries(open_store(config))
    if status is not None:
        found = [run for run in found if run.status.value == status]
    if limit is not None:
        found = found[:limit]
    if as_json:
        print(json.dumps([_summary_json(run) for run in found], indent=2))
        return 0
    if not found:
        print("no runs recorded")
        return 0
    rows: list[tuple[str, ...]] = [
        (
            run.run_id,
            run.pipeline_name or "-",
            run.status.value + (" (dead)" if _dead(run) else ""),
            _local(run.started_at),
            _run_duration(run),
            run.tag,
        )
        for run in found
    ]
    _print_columns(("RUN ID", "PIPELINE", "STATUS", "STARTED", "DURATION", "TAG"), rows,
                   [STATUS_COLOURS[run.status] for run in found])  # fmt: skip
    return 0


STATUS_COLOURS = {
    Status.SUCCESS: "green",
    Status.FAIL: "red",
    Status.PROCESSING: "yellow",
    Status.CANCELLED: "magenta",
}


def _print_columns(
    header: tuple[str, ...], rows: list[tuple[str, ...]], colours: list[str]
) -> None:
    """Aligned columns, written at once: a table of 10,000 runs must print in milliseconds
    (rich's Table measures every cell and takes seconds there), the status coloured on a
    terminal."""
    import sys

    import click

    widths = [max(len(header[i]), *(len(row[i]) for row in rows)) for i in range(len(header))]
    colour = sys.stdout.isatty()

    def line(cells: tuple[str, ...], status_colour: str | None) -> str:
        padded = [cell.ljust(width) for cell, width in zip(cells, widths, strict=True)]
        if status_colour is not None:
            padded[2] = click.style(padded[2], fg=status_colour)
        return "  ".join(padded).rstrip()

    out = [click.style(line(header, None), bold=True) if colour else line(header, None)]
    out.extend(line(row, c if colour else None) for row, c in zip(rows, colours, strict=True))
    sys.stdout.write("\n".join(out) + "\n")


def _dead(run: RunSummary) -> bool:
    return run.status is Status.PROCESSING and run.alive is False


def _tty() -> bool:
    import sys

    return sys.stdout.isatty()


def _summary_json(run: RunSummary) -> dict[str, Any]:
    data = attrs.asdict(run)
    data["status"] = run.status.value
    data["started_at"] = run.started_at.isoformat()
    data["ended_at"] = None if run.ended_at is None else run.ended_at.isoformat()
    data["dead"] = _dead(run)
    return data


def _local(when: dt.datetime) -> str:
    return when.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _run_duration(run: RunSummary) -> str:
    if run.ended_at is None:
        return "-"
    return duration((run.ended_at - run.started_at).total_seconds())


def print_run(config: str, run_id: str, as_json: bool) -> int:
    run_log = load_run(open_store(config), run_id)
    if as_json:
        print(json.dumps(json.loads(dumps(run_log_to_dict(run_log))), indent=2))
        return 0
    Console(highlight=False).print(run_tree(run_log))
    return 0


def run_tree(run_log: RunLog) -> Tree:
    """The record as a rich tree."""
    style = STYLES[run_log.status]
    took = (
        duration((run_log.ended_at - run_log.started_at).total_seconds())
        if run_log.ended_at
        else "running"
    )
    tree = Tree(
        f"[bold]run[/] [bold cyan]{escape(run_log.run_id)}[/]  [{style}]{run_log.status.value}[/]"
        f"  {escape(run_log.pipeline_name or '(unnamed pipeline)')}  {took}"
    )
    tree.add(f"started {_local(run_log.started_at)}"
             + (f", ended {_local(run_log.ended_at)}" if run_log.ended_at else ""))  # fmt: skip
    if run_log.tag:
        tree.add(f"tag {escape(run_log.tag)}")
    if run_log.code is not None:
        code = run_log.code
        if code.commit:
            tree.add(f"code {code.commit}" + (" (dirty)" if code.dirty else ""))
        else:
            tree.add(f"code not identified: {escape(code.error or 'unknown')}")
    for retried in run_log.retried_at:
        tree.add(f"retried {_local(retried)}")
    if run_log.status is Status.FAIL:
        tree.add(
            f"[red]failed at {escape(run_log.step or '(before any step)')}: "
            f"{escape(run_log.error_type or '')}: {escape(run_log.error_message or '')}[/]"
        )
    tree.add(f"parameters in: {_values(run_log.parameters_in)}")
    if run_log.parameters_out:
        tree.add(f"parameters out: {_values(run_log.parameters_out)}")
    steps = tree.add("[bold]steps[/]")
    _add_steps(steps, run_log.steps)
    return tree


def _add_steps(parent: Tree, steps: dict[str, StepLog]) -> None:
    for step in steps.values():
        style = STYLES[step.status]
        node = parent.add(
            f"[{style}]{MARKS[step.status]}[/] [bold]{escape(step.name)}[/] [dim]{step.kind}[/]"
            f"  [{style}]{step.status.value}[/]"
        )
        for attempt in step.attempts:
            _add_attempt(node, attempt)
        for entry in step.catalog:
            extra = f" ({entry.parameter})" if entry.parameter else ""
            node.add(
                f"catalog {entry.stage} {escape(entry.name)}{extra} sha256:{entry.sha256[:12]}"
            )
        if step.assigned and not step.attempts:
            node.add(f"assigned: {_values(step.assigned)}")
        for branch in step.branches.values():
            branch_node = node.add(
                f"[{STYLES[branch.status]}]{MARKS[branch.status]}[/] branch "
                f"[bold]{escape(branch.name)}[/]  [{STYLES[branch.status]}]{branch.status.value}[/]"
            )
            _add_steps(branch_node, branch.steps)


def _add_attempt(parent: Tree, attempt: Attempt) -> None:
    took = (
        duration((attempt.ended_at - attempt.started_at).total_seconds())
        if attempt.ended_at
        else "running"
    )
    when = attempt.started_at.astimezone().strftime("%H:%M:%S.%f")[:-3]
    node = parent.add(
        f"attempt {attempt.number} [{STYLES[attempt.status]}]{attempt.status.value}[/]"
        f"  {when}  {took}"
    )
    if attempt.error_type:
        node.add(f"[red]{escape(attempt.error_type)}: {escape(attempt.error_message or '')}[/]")
    if attempt.parameters_in:
        node.add(f"in: {_values(attempt.parameters_in)}")
    if attempt.parameters_out:
        node.add(f"out: {_values(attempt.parameters_out)}")
    if attempt.metrics:
        node.add(f"metrics: {_values(attempt.metrics)}")


def _values(values: dict[str, Any], limit: int = 300) -> str:
    text = json.dumps(json.loads(dumps(values)), ensure_ascii=False)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return escape(text)
