"""Checks on run records shared by the tests: is every record in a run log final?"""

from __future__ import annotations

from collections.abc import Mapping

from runnable_trio import RunLog, Status
from runnable_trio._runlog import StepLog

__all__ = ["unfinished"]


def unfinished(run_log: RunLog) -> list[str]:
    """Every record of ``run_log`` still ``PROCESSING``: ``run``, step paths, ``path[branch]``
    for branches and ``path#n`` for attempts. Empty when every record is final."""
    found = ["run"] if run_log.status is Status.PROCESSING else []
    _walk(run_log.steps, found)
    return found


def _walk(steps: Mapping[str, StepLog], found: list[str]) -> None:
    for step in steps.values():
        if step.status is Status.PROCESSING:
            found.append(step.path)
        found.extend(
            f"{step.path}#{a.number}" for a in step.attempts if a.status is Status.PROCESSING
        )
        for key, branch in step.branches.items():
            if branch.status is Status.PROCESSING:
                found.append(f"{step.path}[{key}]")
            _walk(branch.steps, found)
