"""``runs`` and ``show``: the recorded runs, newest first, and one record as a tree."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from runnable_trio import RunLog, Status
from runnable_trio._filestore import _encode

from .cli_support import TIMEOUT, cli, wait_for, write_targets

# Each test starts several interpreters: on a loaded machine that takes a while.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    write_targets(tmp_path)
    return tmp_path


def test_runs_lists_newest_first_with_status_and_tag(folder: Path) -> None:
    cli(folder, "run", "targets:greet", "--run-id", "older", "--tag", "mine", check=0)
    cli(folder, "run", "targets:failing", "--run-id", "newer", check=1)
    lines = cli(folder, "runs", check=0).stdout.splitlines()
    assert lines[0].split() == ["RUN", "ID", "PIPELINE", "STATUS", "STARTED", "DURATION", "TAG"]
    assert [line.split()[:3] for line in lines[1:]] == [
        ["newer", "failing", "FAIL"],
        ["older", "greet", "SUCCESS"],
    ]
    assert lines[2].split()[-1] == "mine"
    only = json.loads(cli(folder, "runs", "--status", "success", "--json", check=0).stdout)
    assert [run["run_id"] for run in only] == ["older"]
    assert only[0]["tag"] == "mine"
    assert only[0]["dead"] is False
    limited = json.loads(cli(folder, "runs", "--limit", "1", "--json", check=0).stdout)
    assert [run["run_id"] for run in limited] == ["newer"]


def test_runs_marks_a_run_whose_process_died(folder: Path) -> None:
    lines: list[str] = []
    with subprocess.Popen(
        [sys.executable, "-m", "runnable_trio", "run", "targets:gated", "-p", "gate=g",
         "--run-id", "going"],
        cwd=folder, stdout=subprocess.PIPE, text=True,
    ) as process:  # fmt: skip
        reader = threading.Thread(target=lambda: lines.extend(process.stdout or ()), daemon=True)
        reader.start()
        try:
            wait_for(lambda: any("step.started" in line for line in lines), "the run to start")
            alive = json.loads(cli(folder, "runs", "--json", check=0).stdout)
            assert (alive[0]["status"], alive[0]["alive"], alive[0]["dead"]) == (
                "PROCESSING", True, False,
            )  # fmt: skip
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=TIMEOUT)
        finally:
            process.kill()
        reader.join(TIMEOUT)
    table = cli(folder, "runs", check=0).stdout
    assert "PROCESSING (dead)" in table
    dead = json.loads(cli(folder, "runs", "--json", check=0).stdout)
    assert (dead[0]["alive"], dead[0]["dead"]) == (False, True)


def test_runs_on_thousands_of_runs(folder: Path) -> None:
    store = folder / ".run_log_store"
    store.mkdir()
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    count = 3000
    for i in range(count):
        run_log = RunLog(run_id=f"run-{i:05d}", pipeline_name="p", status=Status.SUCCESS,
                         started_at=start + dt.timedelta(seconds=i),
                         ended_at=start + dt.timedelta(seconds=i, milliseconds=5))  # fmt: skip
        (store / f"{run_log.run_id}.json").write_bytes(_encode(run_log, None))
    lines = cli(folder, "runs", check=0).stdout.splitlines()
    assert len(lines) == count + 1
    assert lines[1].split()[0] == f"run-{count - 1:05d}"
    assert lines[-1].split()[0] == "run-00000"
    assert lines[1].split()[5] == "5ms"


def test_runs_without_any_run(folder: Path) -> None:
    assert cli(folder, "runs", check=0).stdout.strip() == "no runs recorded"
    assert json.loads(cli(folder, "runs", "--json", check=0).stdout) == []


def test_show_prints_the_record_as_a_tree(folder: Path) -> None:
    cli(folder, "run", "targets:nested", "-p", "items=[1, 2, 3]", "--run-id", "n", check=0)
    tree = cli(folder, "show", "n", env={"COLUMNS": "200"}, check=0).stdout
    for text in (
        "run n  SUCCESS  nested",
        '"items": [1, 2, 3]',
        "each map  SUCCESS",
        "branch 2  SUCCESS",
        "double task  SUCCESS",
        'out: {"doubled": 6}',
        "branch left",
        "route conditional",
        "branch big",
        "refine loop",
        "cut task",
        "risky task  FAIL",
        "ValueError: boom 0",
        "branch %on_failure",
        "recover stub",
    ):
        assert text in tree, text


def test_show_json_prints_the_record(folder: Path) -> None:
    cli(folder, "run", "targets:failing", "-p", "v=1", "--run-id", "f", check=1)
    record = json.loads(cli(folder, "show", "f", "--json", check=0).stdout)
    assert record["run_id"] == "f"
    assert record["step"] == "explode"
    assert record["steps"]["explode"]["attempts"][0]["error_message"] == "boom 0"


@pytest.mark.parametrize("command", ["show", "timeline", "replay", "retry"])
def test_an_unknown_run_id_is_a_usage_error(folder: Path, command: str) -> None:
    done = cli(folder, command, "nosuchrun", check=2)
    assert "no run with id 'nosuchrun'" in done.stderr
    done = cli(folder, command, "../escape", check=2)
    assert "run_id must be" in done.stderr


def test_a_bad_configuration_is_a_usage_error(folder: Path) -> None:
    (folder / "bad.yaml").write_text("run_log_store:\n  colour: blue\n", encoding="utf-8")
    done = cli(folder, "runs", "--config", "bad.yaml", check=2)
    assert "colour" in done.stderr
    (folder / "memory.yaml").write_text("run_log_store:\n  type: memory\n", encoding="utf-8")
    done = cli(folder, "runs", "--config", "memory.yaml", check=2)
    assert "'memory'" in done.stderr


def test_commands_read_the_store_the_configuration_names(folder: Path) -> None:
    (folder / "c.yaml").write_text("run_log_store:\n  folder: elsewhere\n", encoding="utf-8")
    cli(folder, "run", "targets:greet", "--config", "c.yaml", "--run-id", "e", check=0)
    assert (folder / "elsewhere" / "e.json").exists()
    assert cli(folder, "runs", check=0).stdout.strip() == "no runs recorded"
    assert "e " in cli(folder, "runs", "--config", "c.yaml", check=0).stdout
    cli(folder, "show", "e", "--config", "c.yaml", check=0)
