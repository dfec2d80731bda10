"""What the live view shows, taken from a running run as an immutable snapshot.

The run's record (``StreamingRun.run_log``) is live and changed by the run's tasks, so it is
read only on the Trio thread, a few times a second, into a :class:`Snapshot` of plain frozen
rows. The renderer (rich's refresh thread) reads nothing but the latest snapshot: the run
never waits for the terminal.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from .._pipeline import AsyncPipeline, BaseStep
from .._runlog import BranchLog, RunLog, Status, StepLog

__all__ = ["Counts", "Row", "Snapshot", "take_snapshot"]

#: A composite with more branches than this shows only its running and failed ones.
SHOWN_BRANCHES = 6
#: A sequence shows at most this many of its finished steps, and of the steps still to come.
SHOWN_DONE = 4
SHOWN_PENDING = 3


@attrs.frozen
class Counts:
    """A composite step's branches: how many ended well, are running, failed, in all."""

    done: int
    running: int
    failed: int
    total: int | None


@attrs.frozen
class Row:
    """One line of the tree: a step, a branch, or a note (``kind == "more"``)."""

    depth: int
    label: str
    kind: str
    status: Status | None  # None: not started yet
    elapsed: float | None = None
    attempts: int = 0
    counts: Counts | None = None
    error: str | None = None


@attrs.frozen
class Snapshot:
    run_id: str
    pipeline_name: str
    status: Status
    elapsed: float
    rows: tuple[Row, ...]
    recent: tuple[str, ...]


def take_snapshot(
    run_log: RunLog, pipeline: AsyncPipeline, recent: Iterable[str], now: dt.datetime
) -> Snapshot:
    """The view of ``run_log`` at ``now`` (call on the run's Trio thread only)."""
    rows: list[Row] = []
    _steps(rows, run_log.steps, pipeline.steps, 0, now, dict(run_log.parameters_in))
    end = run_log.ended_at or now
    return Snapshot(
        run_id=run_log.run_id,
        pipeline_name=run_log.pipeline_name,
        status=run_log.status,
        elapsed=max(0.0, (end - run_log.started_at).total_seconds()),
        rows=tuple(rows),
        recent=tuple(recent),
    )


def _steps(
    rows: list[Row],
    steps: Mapping[str, StepLog],
    definition: Sequence[BaseStep] | None,
    depth: int,
    now: dt.datetime,
    values: dict[str, Any],
) -> None:
    by_name = {step.name: step for step in definition or ()}
    logs = list(steps.values())
    # A long sequence shows its last finished steps, those going, and the next few: the
    # terminal has a few dozen lines, and a frame must cost little however long the run.
    ended = [i for i, log in enumerate(logs) if log.status is Status.SUCCESS]
    hidden = set(ended[:-SHOWN_DONE]) if len(ended) > SHOWN_DONE else set()
    if hidden:
        rows.append(Row(depth=depth, label=f"… {len(hidden)} earlier steps done", kind="more",
                        status=None))  # fmt: skip
    for index, log in enumerate(logs):
        if index in hidden:
            values.update(log.assigned)
            continue
        step = by_name.get(log.name)
        counts = _counts(log, step, values) if log.branches or _is_composite(step) else None
        rows.append(
            Row(
                depth=depth,
                label=log.name,
                kind=log.kind,
                status=log.status,
                elapsed=_elapsed(log, now),
                attempts=len(log.attempts),
                counts=counts,
                error=log.error_message if log.status is Status.FAIL else None,
            )
        )
        _branches(rows, log, step, depth + 1, now, values)
        values.update(log.assigned)
    pending = [step for step in definition or () if step.name not in steps]
    for step in pending[:SHOWN_PENDING]:
        rows.append(Row(depth=depth, label=step.name, kind=step.kind, status=None))
    if len(pending) > SHOWN_PENDING:
        rows.append(Row(depth=depth, label=f"… {len(pending) - SHOWN_PENDING} more steps",
                        kind="more", status=None))  # fmt: skip


def _branches(
    rows: list[Row],
    log: StepLog,
    step: BaseStep | None,
    depth: int,
    now: dt.datetime,
    values: dict[str, Any],
) -> None:
    branches = list(log.branches.values())
    shown = branches
    if len(branches) > SHOWN_BRANCHES:
        running = [b for b in branches if b.status is Status.PROCESSING]
        failed = [b for b in branches if b.status is Status.FAIL]
        shown = (failed[:2] + running)[: SHOWN_BRANCHES - 1]
    for branch in shown:
        rows.append(
            Row(
                depth=depth,
                label=f"[{branch.name}]",
                kind="branch",
                status=branch.status,
                elapsed=_branch_elapsed(branch, now),
            )
        )
        pipeline = _branch_pipeline(step, branch.name)
        _steps(rows, branch.steps, pipeline.steps if pipeline else None, depth + 1, now,
               dict(values))  # fmt: skip
    hidden = len(branches) - len(shown)
    if hidden:
        rows.append(Row(depth=depth, label=f"… {hidden} other branches", kind="more", status=None))


def _is_composite(step: BaseStep | None) -> bool:
    return step is not None and step.kind in ("parallel", "map", "conditional", "loop")


def _branch_pipeline(step: BaseStep | None, key: str) -> AsyncPipeline | None:
    if step is None:
        return None
    if key == "%on_failure":
        return step.on_failure
    branches = getattr(step, "branches", None)
    if isinstance(branches, Mapping):
        found = branches.get(key)
        return found if isinstance(found, AsyncPipeline) else None
    branch = getattr(step, "branch", None)
    return branch if isinstance(branch, AsyncPipeline) else None


def _counts(log: StepLog, step: BaseStep | None, values: Mapping[str, Any]) -> Counts:
    done = running = failed = 0
    for key, branch in log.branches.items():
        if key == "%on_failure":
            continue
        if branch.status is Status.PROCESSING:
            running += 1
        elif branch.status is Status.FAIL:
            failed += 1
        else:
            done += 1
    return Counts(done, running, failed, _total(step, values))


def _total(step: BaseStep | None, values: Mapping[str, Any]) -> int | None:
    if step is None:
        return None
    if step.kind == "parallel":
        return len(getattr(step, "branches", ()))
    if step.kind == "loop":
        total: int = getattr(step, "max_iterations", 0)
        return total
    if step.kind == "map":
        items = values.get(getattr(step, "iterate_on", ""))
        return len(items) if isinstance(items, list | tuple) else None
    return None


def _elapsed(log: StepLog, now: dt.datetime) -> float | None:
    if not log.attempts:
        return None
    end = log.attempts[-1].ended_at or now
    return max(0.0, (end - log.attempts[0].started_at).total_seconds())


def _branch_elapsed(branch: BranchLog, now: dt.datetime) -> float | None:
    starts = [s.attempts[0].started_at for s in branch.steps.values() if s.attempts]
    if not starts:
        return None
    ends = [s.attempts[-1].ended_at or now for s in branch.steps.values() if s.attempts]
    end = now if branch.status is Status.PROCESSING else max(ends)
    return max(0.0, (end - min(starts)).total_seconds())
