"""A branch's entry quotes its key once where its name is that key (as ``fan_out`` makes it),
looks its status up, and a Map item's step name is quoted once for the items that share it:
the texts are still the generic encoding where the name is another object, another name, the
status a plain or odd str, and the items' steps' names change from one item to the next."""

from __future__ import annotations

import pytest

from runnable_trio._jsoncodec import dumps
from runnable_trio._runlog import BranchLog, RunLog, Status, StepLog, run_log_to_dict
from runnable_trio._steplines import StepTexts, journal_lines, run_record

#: (name as the key's own object, another object of the same text, another name); statuses.
_NAMES = ("same", "equal", "other")
_STATUSES: tuple[str, ...] = (Status.SUCCESS, "SUCCESS", 'odd "status"\n', Status.CANCELLED)


def _composite(width: int) -> StepLog:
    step = StepLog("each", "map", "each", status=Status.SUCCESS)
    step.new_attempt().end(Status.SUCCESS)
    for i in range(width):
        key = f"{i}é"
        how = _NAMES[i % len(_NAMES)]
        name = key if how == "same" else "".join(list(key)) if how == "equal" else f"n{i}"
        assert (name is key) == (how == "same")
        assert (name == key) == (how != "other")
        branch = step.branches[key] = BranchLog(name, _STATUSES[i % len(_STATUSES)])
        # The step's name changes every third item, and is an equal new object in between.
        inner = "".join(["w", str(i // 3), "\u2028"])
        item = StepLog(inner, "task", f"each.{key}.{inner}", status=Status.SUCCESS)
        item.new_attempt().end(Status.SUCCESS)
        branch.steps[inner] = item
    return step


def _generic(run_log: RunLog) -> str:
    record = run_log_to_dict(run_log)
    keys = ("run_id", "status", "tag", "pipeline_name", "started_at", "ended_at")
    return dumps({"_summary": {**{key: record[key] for key in keys}, "writer": None}, **record})


@pytest.mark.parametrize("width", [1, 12, 70, 150])
def test_branch_entries_are_the_generic_encoding_however_named(width: int) -> None:
    step = _composite(width)
    run_log = RunLog("r", pipeline_name="p")
    run_log.steps[step.name] = step
    run_log.end(Status.SUCCESS)
    texts = StepTexts()
    written: set[str] = set()
    for branch in step.branches.values():
        for inner in branch.steps.values():
            journal_lines(run_log, inner, written, texts)
    [line] = journal_lines(run_log, step, written, texts)
    ends = {key: BranchLog(b.name, b.status) for key, b in step.branches.items()}
    emptied = StepLog(step.name, step.kind, step.path, step.status, step.attempts, ends)
    assert line == dumps({"step": run_log_to_dict(_only(emptied))["steps"]["each"]})
    assert run_record(run_log, None, texts) == _generic(run_log)
    assert run_record(run_log, None) == _generic(run_log)


def _only(step: StepLog) -> RunLog:
    run_log = RunLog("r")
    run_log.steps[step.name] = step
    return run_log
