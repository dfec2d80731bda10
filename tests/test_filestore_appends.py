"""A run's journal lines go through the pool keyed by the journal's path as text, for a run
started and for one reopened by a retry alike (no ``str()`` of a ``Path`` per line)."""

from __future__ import annotations

import json
from pathlib import Path

from runnable_trio._filestore import FileRunLogStore
from runnable_trio._runlog import RunLog, Status, StepLog
from runnable_trio._writers import APPENDS


def _finished(name: str) -> StepLog:
    step = StepLog(name, "task", name, status=Status.SUCCESS)
    step.new_attempt().end(Status.SUCCESS)
    return step


def _journal_steps(path: str) -> list[str]:
    return [
        json.loads(line)["step"]["name"]
        for line in Path(path).read_text().splitlines()
        if line.startswith('{"step"')
    ]


async def test_started_and_reopened_runs_append_by_the_journals_path_as_text(
    tmp_path: Path,
) -> None:
    store = FileRunLogStore(tmp_path)
    run_log = RunLog("r")
    await store.create(run_log)
    for reopened in (False, True):
        journal = store._journals["r"]
        assert type(journal.path) is str
        await store.step_finished(run_log, _finished(f"s{reopened:d}"))
        assert journal.path in APPENDS._fds  # the pool's own key: one descriptor, reused
        assert _journal_steps(journal.path) == [f"s{reopened:d}"]
        run_log.status = Status.FAIL
        await store.finish(run_log)
        if not reopened:
            run_log.status = Status.PROCESSING
            await store.reopen(run_log)
