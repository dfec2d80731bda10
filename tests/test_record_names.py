"""One name per meaning: the failed step is ``step`` in the run log, events, SSE and event log.

Records written before the run log said ``step`` said ``failed_step``; every reader takes
them as ``step``, and ``RunLog.failed_step`` still reads it, with a ``DeprecationWarning``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from runnable_trio import ExecutionFailedError, RunLog, Status, read_run_log
from runnable_trio._eventlog import EventLogEnd, decode_line, events_path
from runnable_trio._jsoncodec import dumps, loads
from runnable_trio._recordread import read_run
from runnable_trio._replay import replay
from runnable_trio._runlog import run_log_from_dict, run_log_to_dict
from runnable_trio._sse import error_event
from tests.helpers import collect, task


async def _broken() -> None:
    raise ValueError("broke")


def _older(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` as an older version wrote it: ``failed_step`` where it now says ``step``."""
    older = dict(record)
    older["failed_step"] = older.pop("step")
    return older


async def test_the_failed_step_has_one_name_in_the_run_log_events_and_sse() -> None:
    pipeline = task("explode", _broken)
    with pytest.raises(ExecutionFailedError) as caught:
        await collect(pipeline, run_id="r1", attribution=True)
    failure = caught.value
    run_log = read_run_log("r1")
    assert run_log.step == "explode"
    assert run_log_to_dict(run_log)["step"] == "explode"
    assert "failed_step" not in run_log_to_dict(run_log)
    assert error_event(failure)["step"] == "explode"
    assert failure.step == "explode"


def test_an_older_record_is_read_with_its_failed_step_as_step() -> None:
    run_log = RunLog("r1", status=Status.FAIL, step="fan.1.t", error_type="ValueError")
    older = _older(loads(dumps(run_log_to_dict(run_log))))
    assert "step" not in older
    assert run_log_from_dict(json.loads(json.dumps(older))).step == "fan.1.t"
    assert read_run(json.loads(json.dumps(older))).step == "fan.1.t"


def test_an_older_event_log_end_line_is_read_with_its_failed_step_as_step() -> None:
    line = '{"end":{"status":"FAIL","failed_step":"a.b","error_type":"E","error_message":"m"}}'
    assert decode_line(line) == EventLogEnd(
        status=Status.FAIL, step="a.b", error_type="E", error_message="m"
    )


def _rewrite_end_line_as_older(path: Path) -> None:
    lines = path.read_text().splitlines()
    end = json.loads(lines[-1])
    end["end"] = _older(end["end"])
    path.write_text("\n".join([*lines[:-1], json.dumps(end)]) + "\n")


async def test_replay_of_an_older_event_log_names_the_failed_step() -> None:
    with pytest.raises(ExecutionFailedError):
        await collect(task("explode", _broken), run_id="r1", event_log=True)
    _rewrite_end_line_as_older(events_path(".run_log_store", "r1"))
    with pytest.raises(ExecutionFailedError) as caught:
        async for _ in replay("r1"):
            pass
    assert caught.value.step == "explode"


def test_the_former_attribute_name_still_reads_with_a_warning() -> None:
    run_log = RunLog("r1", step="p.a.t")
    with pytest.warns(DeprecationWarning, match="RunLog.step"):
        assert run_log.failed_step == "p.a.t"
