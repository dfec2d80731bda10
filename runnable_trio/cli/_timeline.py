"""``timeline``: a bar per step and branch on one time axis, in the terminal and as HTML."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import attrs
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from .._runlog import BranchLog, RunLog, Status, StepLog, utc_now
from ._stores import load_run, open_store
from ._text import duration

__all__ = ["Bar", "bars_of", "timeline_command"]

STYLES = {
    Status.SUCCESS: "green",
    Status.FAIL: "red",
    Status.PROCESSING: "yellow",
    Status.CANCELLED: "magenta",
}


@attrs.frozen(kw_only=True)
class Span:
    """One attempt: seconds from the run's start."""

    number: int
    start: float
    end: float
    status: Status
    error: str | None


@attrs.frozen(kw_only=True)
class Bar:
    """One row of the timeline: a step (``kind`` its kind) or a branch (``kind == "branch"``)."""

    path: str
    label: str
    depth: int
    kind: str
    status: Status
    start: float | None
    end: float | None
    spans: tuple[Span, ...] = ()
    error: str | None = None


def bars_of(run_log: RunLog, now: dt.datetime | None = None) -> tuple[list[Bar], float]:
    """The rows of ``run_log``'s timeline, in tree order, and the run's length in seconds."""
    origin = run_log.started_at
    end = run_log.ended_at or now or utc_now()
    found: list[Bar] = []
    _steps(found, run_log.steps, 0, origin, end)
    return found, max(0.0, (end - origin).total_seconds())


def _steps(
    found: list[Bar], steps: dict[str, StepLog], depth: int, origin: dt.datetime, end: dt.datetime
) -> None:
    def at(when: dt.datetime | None) -> float:
        return ((when or end) - origin).total_seconds()

    for step in steps.values():
        spans = tuple(
            Span(
                number=a.number,
                start=at(a.started_at),
                end=at(a.ended_at),
                status=a.status,
                error=f"{a.error_type}: {a.error_message}" if a.error_type else None,
            )
            for a in step.attempts
        )
        found.append(
            Bar(
                path=step.path,
                label=step.name,
                depth=depth,
                kind=step.kind or "step",
                status=step.status,
                start=spans[0].start if spans else None,
                end=spans[-1].end if spans else None,
                spans=spans,
                error=spans[-1].error if spans else None,
            )
        )
        for branch in step.branches.values():
            _branch(found, step, branch, depth + 1, origin, end)


def _branch(
    found: list[Bar],
    step: StepLog,
    branch: BranchLog,
    depth: int,
    origin: dt.datetime,
    end: dt.datetime,
) -> None:
    index = len(found)
    _steps(found, branch.steps, depth + 1, origin, end)
    inner = [bar for bar in found[index:] if bar.start is not None]
    start = min((bar.start for bar in inner if bar.start is not None), default=None)
    stop = max((bar.end for bar in inner if bar.end is not None), default=None)
    found.insert(
        index,
        Bar(
            path=f"{step.path}.{branch.name}",
            label=f"[{branch.name}]",
            depth=depth,
            kind="branch",
            status=branch.status,
            start=start,
            end=stop,
        ),
    )


def timeline_command(config: str, run_id: str, output: str | None, console: bool) -> int:
    run_log = load_run(open_store(config), run_id)
    if console:
        print_timeline(run_log, Console(highlight=False))
    if output:
        from ._timeline_html import timeline_html

        path = Path(output)
        path.write_text(timeline_html(run_log), encoding="utf-8")
        print(f"timeline written to {path}")
    return 0


def print_timeline(run_log: RunLog, console: Console) -> None:
    bars, total = bars_of(run_log)
    label_width = min(40, max([len(b.label) + 2 * b.depth for b in bars] + [8]))
    width = max(20, min(80, console.width - label_width - 14))
    scale = width / total if total > 0 else 0.0
    console.print(
        f"[bold]run[/] [bold cyan]{escape(run_log.run_id)}[/]  "
        f"[{STYLES[run_log.status]}]{run_log.status.value}[/]  {duration(total)}"
    )
    axis = Text(" " * (label_width + 1))
    axis.append("0".ljust(width // 2) + duration(total / 2).ljust(width - width // 2))
    axis.append(duration(total))
    console.print(axis, style="dim")
    for bar in bars:
        line = Text(("  " * bar.depth + bar.label)[:label_width].ljust(label_width) + " ")
        cells = [" "] * width
        for span in bar.spans or ((Span(number=0, start=bar.start, end=bar.end or bar.start,
                                        status=bar.status, error=None),)
                                  if bar.start is not None else ()):  # fmt: skip
            first = min(width - 1, int(span.start * scale))
            last = max(first, min(width - 1, int(span.end * scale + 0.5) - 1))
            for i in range(first, last + 1):
                cells[i] = "█" if bar.kind != "branch" else "▒"
        line.append("".join(cells), style=STYLES[bar.status])
        took = None if bar.start is None or bar.end is None else bar.end - bar.start
        line.append(f" {duration(took)}", style="cyan")
        if len(bar.spans) > 1:
            line.append(f" {len(bar.spans)} attempts", style="yellow")
        console.print(line, no_wrap=True, overflow="ellipsis")
