"""The record of a run with composite steps is written in pieces (``_branch_parts``): a Map's
items a batch at a time, a branch around a composite in parts of its own. The pieces joined
are exactly the generic encoding, whatever the branches hold (failed, cancelled, empty, two
steps, a composite inside, texts kept or not, kept texts gone stale), and no piece holds a
big Map's whole text."""

from __future__ import annotations

from typing import Any

import pytest

from runnable_trio import _steplines
from runnable_trio._jsoncodec import dumps
from runnable_trio._runlog import (
    BranchLog,
    RunLog,
    Status,
    StepLog,
    run_log_to_dict,
    step_log_to_dict,
)
from runnable_trio._steplines import StepTexts, journal_lines, record_parts, run_record, step_line

_STATUSES = (Status.SUCCESS, Status.FAIL, Status.CANCELLED)


def _task(path: str, status: Status, value: object = 1) -> StepLog:
    step = StepLog(path.rpartition(".")[2], "task", path)
    attempt = step.new_attempt()
    attempt.parameters_in["item"] = value
    if status is Status.FAIL:
        attempt.end(status, ValueError(f'bad "{path}"\n'))
    else:
        attempt.end(status)
    step.status = status
    return step


def _map(path: str, width: int) -> StepLog:
    """A Map of ``width`` items of one step each, ended every way (its steps' names odd)."""
    step = StepLog(path.rpartition(".")[2], "map", path, status=Status.FAIL)
    step.new_attempt().end(Status.FAIL, ValueError("an item failed"))
    for i in range(width):
        status = _STATUSES[i % 3]
        key = f'{i}"é'
        branch = step.branches[key] = BranchLog(key, status)
        branch.steps["w\u2028"] = _task(f"{path}.{key}.w\u2028", status, value=[i, None])
    return step


def _mixed(path: str) -> StepLog:
    """A Parallel whose branches are empty, of two steps, of a Map (wider than a batch) and
    of one step, in an order that puts each kind between batches of one-step branches."""
    step = _map(path, 3 * _steplines._BATCH + 5)
    step.kind = "parallel"
    branches = list(step.branches.items())
    step.branches.clear()
    for index, (key, branch) in enumerate(branches):
        step.branches[key] = branch
        if index == _steplines._BATCH - 1:  # after a full batch: nothing left to flush
            step.branches["empty"] = BranchLog("empty", Status.CANCELLED)
        elif index == _steplines._BATCH + 3:
            two = step.branches["two"] = BranchLog("two", Status.FAIL)
            two.steps["a"] = _task(f"{path}.two.a", Status.SUCCESS)
            two.steps["b"] = _task(f"{path}.two.b", Status.FAIL)
        elif index == 2 * _steplines._BATCH:
            nested = step.branches["nested"] = BranchLog("nested", Status.FAIL)
            nested.steps["before"] = _task(f"{path}.nested.before", Status.SUCCESS)
            nested.steps["inner"] = _map(f"{path}.nested.inner", _steplines._BATCH + 2)
            nested.steps["after"] = _task(f"{path}.nested.after", Status.CANCELLED)
    only = step.branches["only map"] = BranchLog("only map", Status.SUCCESS)
    only.steps["m"] = _map(f"{path}.only map.m", 2)
    return step


def _run(*steps: StepLog) -> RunLog:
    run_log = RunLog("r", pipeline_name="p")
    for step in steps:
        run_log.steps[step.name] = step
    run_log.definition = {"steps": {}, "name": "p"}
    run_log.definition_hash = "ab" * 32
    run_log.end(Status.FAIL, RuntimeError("failed"))
    return run_log


def _generic(run_log: RunLog) -> str:
    record = run_log_to_dict(run_log)
    keys = ("run_id", "status", "tag", "pipeline_name", "started_at", "ended_at")
    summary = {key: record[key] for key in keys}
    summary["writer"] = None
    return dumps({"_summary": summary, **record})


def _inner(step: StepLog) -> list[StepLog]:
    """The steps inside ``step``, at any depth, innermost first (as they finish)."""
    found = []
    for branch in step.branches.values():
        for inner in branch.steps.values():
            found += _inner(inner)
            found.append(inner)
    return found


def _journaled(run_log: RunLog) -> StepTexts:
    """The texts a file store keeps as each step's line is written."""
    texts = StepTexts()
    written: set[str] = set()
    for step in run_log.steps.values():
        for inner in [*_inner(step), step]:
            journal_lines(run_log, inner, written, texts)
    return texts


@pytest.mark.parametrize("kept", [False, True], ids=["no texts", "texts kept"])
def test_the_pieces_are_the_generic_encoding(kept: bool) -> None:
    run_log = _run(_task("first", Status.SUCCESS), _mixed("fan"), _map("each", 2), _map("none", 0))
    texts = _journaled(run_log) if kept else None
    assert run_record(run_log, None, texts) == _generic(run_log)


def test_stale_kept_texts_are_not_used() -> None:
    step = _map("each", 2 * _steplines._BATCH + 1)
    run_log = _run(step)
    texts = _journaled(run_log)
    items = [branch.steps["w\u2028"] for branch in step.branches.values()]
    items[0].status = Status.CANCELLED  # ended otherwise after its line
    items[1].new_attempt().end(Status.SUCCESS)  # retried
    items[2].branches["x"] = BranchLog("x", Status.SUCCESS)  # an on_failure branch since
    step.branches['3"é'].steps["w\u2028"] = _task(items[3].path, Status.SUCCESS, 7)  # replaced
    assert run_record(run_log, None, texts) == _generic(run_log)


def test_a_composite_line_is_still_the_generic_encoding() -> None:
    step = _mixed("fan")
    assert step_line(step) == dumps({"step": step_log_to_dict(step)})


def test_a_big_maps_record_is_never_one_piece() -> None:
    width = 20 * _steplines._BATCH
    run_log = _run(_map("each", width))
    texts = _journaled(run_log)
    parts = list(record_parts(run_log, None, texts))
    entries = len(step_line(next(iter(run_log.steps["each"].branches['5"é'].steps.values()))))
    # A piece holds a batch's entries at most: the whole Map's would be 20 batches.
    assert max(map(len, parts)) < 2 * _steplines._BATCH * entries
    assert "".join(parts) == _generic(run_log)


def test_a_kept_item_is_not_encoded_again(monkeypatch: pytest.MonkeyPatch) -> None:
    step = _map("each", 2 * _steplines._BATCH)
    run_log = _run(step)
    texts = _journaled(run_log)
    next(iter(step.branches.values())).steps["w\u2028"].status = Status.FAIL  # stale
    calls: list[Any] = []
    encode = _steplines._step

    def counted(*args: Any) -> str:
        calls.append(args[0].path)
        return encode(*args)

    monkeypatch.setattr(_steplines, "_step", counted)
    assert run_record(run_log, None, texts) == _generic(run_log)
    assert calls == ['each.0"é.w\u2028']  # the stale one only
