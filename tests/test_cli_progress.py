"""The live view's snapshots and their rendering, in process (no terminal needed)."""

from __future__ import annotations

import datetime as dt

from rich.console import Console

from runnable_trio import AsyncPipeline, AsyncPythonTask, Map, RunLog, Status
from runnable_trio._runlog import BranchLog, StepLog
from runnable_trio.cli._live import render_snapshot
from runnable_trio.cli._progress import take_snapshot

NOW = dt.datetime(2026, 1, 1, 12, 0, 10, tzinfo=dt.UTC)


async def _step(x: int) -> int:
    return x


def _log(name: str, status: Status, path: str | None = None) -> StepLog:
    log = StepLog(name, "task", path or name, status=status)
    attempt = log.new_attempt()
    attempt.started_at = NOW - dt.timedelta(seconds=2)
    if status is not Status.PROCESSING:
        attempt.end(status)
        attempt.ended_at = NOW - dt.timedelta(seconds=1)
    return log


def test_a_long_chain_shows_its_last_steps_and_the_next_ones() -> None:
    pipeline = AsyncPipeline([AsyncPythonTask(f"s{i}", _step) for i in range(30)], name="c")
    run_log = RunLog(run_id="r", pipeline_name="c", started_at=NOW - dt.timedelta(seconds=5))
    for i in range(20):
        run_log.steps[f"s{i}"] = _log(f"s{i}", Status.SUCCESS)
    run_log.steps["s20"] = _log("s20", Status.PROCESSING)
    snapshot = take_snapshot(run_log, pipeline, ["an event"], NOW)
    labels = [row.label for row in snapshot.rows]
    assert labels == ["… 16 earlier steps done", "s16", "s17", "s18", "s19", "s20",
                      "s21", "s22", "s23", "… 6 more steps"]  # fmt: skip
    assert snapshot.rows[5].elapsed == 2.0
    assert snapshot.rows[4].elapsed == 1.0
    assert snapshot.elapsed == 5.0
    console = Console(width=80, record=True, color_system=None)
    console.print(render_snapshot(snapshot))
    text = console.export_text()
    assert text.splitlines()[0] == "● run r  c  PROCESSING  5.0s"
    assert "  ● s20  task  2.0s" in text.splitlines()
    assert "  an event" in text.splitlines()


def test_a_map_counts_its_items_over_the_total() -> None:
    branch = AsyncPythonTask("item", _step).as_async_pipeline()
    pipeline = AsyncPipeline([Map("fan", "xs", "x", branch)], name="m")
    run_log = RunLog(run_id="r", parameters_in={"xs": list(range(10))}, started_at=NOW)
    fan = run_log.steps["fan"] = _log("fan", Status.PROCESSING)
    fan.kind = "map"
    for i, status in enumerate([Status.SUCCESS] * 5 + [Status.FAIL] + [Status.PROCESSING] * 2):
        fan.branches[str(i)] = BranchLog(str(i), status)
        fan.branches[str(i)].steps["item"] = _log("item", status, f"fan.{i}.item")
    snapshot = take_snapshot(run_log, pipeline, [], NOW)
    row = snapshot.rows[0]
    assert row.counts is not None
    assert (row.counts.done, row.counts.running, row.counts.failed, row.counts.total) == (
        5, 2, 1, 10,
    )  # fmt: skip
    # More branches than are shown: the failed and the running ones.
    assert [r.label for r in snapshot.rows if r.kind == "branch"] == ["[5]", "[6]", "[7]"]
    assert snapshot.rows[-1].label == "… 5 other branches"
