"""The live view of ``run`` on a terminal: a tree of steps redrawn a few times a second.

Two sides, one way: the Trio side (:meth:`LiveView.publish`, in a task of the command's own
nursery) takes a :class:`~._progress.Snapshot` of the run every ``1/FPS`` s and swaps it into
``self._current`` (one reference assignment); rich's refresh thread renders whatever snapshot
is current and writes it to the terminal. The run's tasks never wait for the terminal: a slow
terminal only delays the next frame.
"""

from __future__ import annotations

import collections
from typing import Any

import trio
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.text import Text

from .._events import META_KEY
from .._pipeline import AsyncPipeline
from .._runlog import RunLog, Status, utc_now
from ._progress import Row, Snapshot, take_snapshot
from ._text import event_text

__all__ = ["FPS", "LiveView", "render_snapshot"]

FPS = 5
RECENT = 5

MARKS: dict[Status | None, tuple[str, str]] = {
    Status.SUCCESS: ("✓", "green"),
    Status.FAIL: ("✗", "bold red"),
    Status.PROCESSING: ("●", "yellow"),
    Status.CANCELLED: ("⊘", "magenta"),
    None: ("·", "dim"),
}


def render_snapshot(snapshot: Snapshot) -> RenderableType:
    """The renderable of one snapshot (pure: called from rich's refresh thread)."""
    mark, style = MARKS[snapshot.status]
    header = Text.assemble(
        (f"{mark} ", style),
        ("run ", "bold"),
        (snapshot.run_id, "bold cyan"),
        f"  {snapshot.pipeline_name or '(unnamed pipeline)'}  ",
        (f"{snapshot.status.value}", style),
        f"  {snapshot.elapsed:.1f}s",
    )
    lines: list[RenderableType] = [header]
    lines.extend(_row(row) for row in snapshot.rows)
    if snapshot.recent:
        lines.append(Text("newest events", style="bold"))
        lines.extend(Text(f"  {text}", style="dim", overflow="ellipsis", no_wrap=True)
                     for text in snapshot.recent)  # fmt: skip
    return Group(*lines)


def _row(row: Row) -> Text:
    indent = "  " * (row.depth + 1)
    if row.kind == "more":
        return Text(f"{indent}{row.label}", style="dim")
    mark, style = MARKS[row.status]
    text = Text.assemble(indent, (mark, style), " ", (row.label, "bold" if row.depth == 0 else ""))
    if row.kind != "branch":
        text.append(f"  {row.kind}", style="dim")
    if row.counts is not None:
        c = row.counts
        total = "?" if c.total is None else str(c.total)
        text.append(f"  {c.done}/{total} done", style="green")
        if c.running:
            text.append(f" {c.running} running", style="yellow")
        if c.failed:
            text.append(f" {c.failed} failed", style="red")
    if row.elapsed is not None:
        text.append(f"  {row.elapsed:.1f}s", style="cyan")
    if row.attempts > 1:
        text.append(f"  attempt {row.attempts}", style="yellow")
    if row.error:
        text.append(f"  {row.error}", style="red")
    text.no_wrap = True
    text.overflow = "ellipsis"
    return text


class LiveView:
    """Shows one run on ``console`` while it goes."""

    def __init__(self, console: Console, run_log: RunLog, pipeline: AsyncPipeline) -> None:
        self._run_log = run_log
        self._pipeline = pipeline
        self._recent: collections.deque[str] = collections.deque(maxlen=RECENT)
        self._current = self._take()
        self._live = Live(
            get_renderable=self._render,
            console=console,
            refresh_per_second=FPS,
            transient=False,
            redirect_stdout=False,
            redirect_stderr=False,
        )

    def event(self, event: dict[str, Any]) -> None:
        """Note one event of the run (the Trio side; cheap)."""
        meta = event.get(META_KEY)
        kind = event.get("type")
        if isinstance(kind, str) and kind.startswith(("run.", "step.")) and meta is not None:
            return  # the tree shows lifecycle events
        self._recent.append(event_text(event))

    async def publish(self) -> None:
        """Take a snapshot every ``1/FPS`` s until cancelled."""
        while True:
            await trio.sleep(1 / FPS)
            self._current = self._take()

    def start(self) -> None:
        self._live.start()

    def stop(self) -> None:
        """Draw the final state once more and leave it on the screen."""
        self._current = self._take()
        self._live.refresh()
        self._live.stop()

    def _take(self) -> Snapshot:
        return take_snapshot(self._run_log, self._pipeline, tuple(self._recent), utc_now())

    def _render(self) -> RenderableType:
        return render_snapshot(self._current)
