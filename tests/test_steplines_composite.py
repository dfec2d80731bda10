"""A composite step's own journal line says how each branch ended, without its steps: the
generic encoding of the step with its branches emptied, written in one comprehension."""

from __future__ import annotations

from typing import Any

import pytest

from runnable_trio import _steplines
from runnable_trio._jsoncodec import dumps
from runnable_trio._runlog import BranchLog, RunLog, Status, StepLog, step_log_to_dict
from runnable_trio._steplines import journal_lines


def _composite(width: int) -> StepLog:
    step = StepLog("fan", "parallel", "fan", status=Status.FAIL)
    step.new_attempt().end(Status.FAIL, ValueError("a branch failed"))
    for i in range(width):
        name = f'b"{i}\u00e9'
        branch = step.branches[name] = BranchLog(name, Status.FAIL if i % 2 else Status.SUCCESS)
        inner = branch.steps["t"] = StepLog("t", "task", f"fan.{name}.t", status=branch.status)
        inner.new_attempt().end(branch.status)
    return step


def test_the_composite_line_is_the_generic_encoding_of_its_branch_ends() -> None:
    step = _composite(5)
    [line] = journal_lines(RunLog("r"), step, set())
    ends = {name: BranchLog(b.name, b.status) for name, b in step.branches.items()}
    emptied = StepLog(step.name, step.kind, step.path, step.status, step.attempts, ends)
    assert line == dumps({"step": step_log_to_dict(emptied)})


def test_the_composite_line_makes_no_call_per_branch(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    # What writes a branch's entry in the record, and a step's inside it.
    for name in ("_branch_parts", "_step_of"):
        function = getattr(_steplines, name)

        def counted(*args: Any, function: Any = function) -> Any:
            calls.append(args)
            return function(*args)

        monkeypatch.setattr(_steplines, name, counted)
    journal_lines(RunLog("r"), _composite(50), set())
    assert calls == []
