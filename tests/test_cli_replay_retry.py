"""``replay`` (a run's recorded events, following a live run) and ``retry``."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from runnable_trio import read_run_log

from .cli_support import TIMEOUT, cli, wait_for, write_targets

# Each test starts several interpreters: on a loaded machine that takes a while.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

EVENT_LOG = "event_log: true\n"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    write_targets(tmp_path)
    (tmp_path / "log.yaml").write_text(EVENT_LOG, encoding="utf-8")
    return tmp_path


def test_replay_prints_the_recorded_events(folder: Path) -> None:
    live = cli(folder, "run", "targets:greet", "--config", "log.yaml", "--run-id", "r",
               "--events", "jsonl", check=0).stdout  # fmt: skip
    replayed = cli(folder, "replay", "r", "--config", "log.yaml", check=0).stdout
    assert [json.loads(line) for line in replayed.splitlines()] == [
        json.loads(line) for line in live.splitlines()
    ]
    after = cli(folder, "replay", "r", "--after", "5", "--config", "log.yaml", check=0).stdout
    assert [json.loads(line)["_meta"]["seq"] for line in after.splitlines()] == [6, 7]


def test_replay_of_a_run_without_event_log(folder: Path) -> None:
    cli(folder, "run", "targets:greet", "--run-id", "quiet", check=0)
    done = cli(folder, "replay", "quiet", check=2)
    assert "has no event log" in done.stderr


def test_replay_follow_tails_a_live_run(folder: Path) -> None:
    lines: list[str] = []
    with subprocess.Popen(
        [sys.executable, "-m", "runnable_trio", "run", "targets:gated", "-p", "gate=go",
         "--config", "log.yaml", "--run-id", "f", "--events", "none"],
        cwd=folder,
    ) as running:  # fmt: skip
        wait_for(lambda: (folder / ".run_log_store" / "f.events.jsonl").exists(), "the event log")
        with subprocess.Popen(
            [sys.executable, "-m", "runnable_trio", "replay", "f", "--follow",
             "--config", "log.yaml"],
            cwd=folder, stdout=subprocess.PIPE, text=True,
        ) as follower:  # fmt: skip
            reader = threading.Thread(target=lambda: lines.extend(follower.stdout or ()))
            reader.start()
            try:
                wait_for(lambda: any('"waiting"' in line for line in lines), "the first event")
                assert not any('"done"' in line for line in lines)
                (folder / "go").touch()
                assert running.wait(timeout=TIMEOUT) == 0
                assert follower.wait(timeout=TIMEOUT) == 0
            finally:
                follower.kill()
                running.kill()
            reader.join(TIMEOUT)
    types = [json.loads(line)["type"] for line in lines]
    assert types == ["waiting", "done"]  # the run had no attribution: its events as they were


def test_retry_finds_the_pipeline_again_and_reruns_what_failed(folder: Path) -> None:
    cli(folder, "run", "targets:failing", "-p", "v=1", "--run-id", "again", check=1)
    (folder / "fixed").touch()
    done = cli(folder, "retry", "again", check=0)
    assert "step.started    explode" in done.stdout
    assert "first" not in done.stdout  # it succeeded: not run again
    record = read_run_log("again")
    assert record.status == "SUCCESS"
    assert len(record.steps["first"].attempts) == 1
    assert len(record.steps["explode"].attempts) == 2


def test_retry_with_a_target(folder: Path) -> None:
    cli(folder, "run", "targets:made_failing", "--run-id", "made", check=1)
    done = cli(folder, "retry", "made", check=2)
    assert "cannot find the pipeline of run 'made' again" in done.stderr
    assert "Give it as TARGET" in done.stderr
    (folder / "fixed").touch()
    cli(folder, "retry", "made", "targets:made_failing", check=0)
    assert read_run_log("made").status == "SUCCESS"


def test_retry_of_a_run_that_succeeded(folder: Path) -> None:
    cli(folder, "run", "targets:greet", "--run-id", "fine", check=0)
    done = cli(folder, "retry", "fine", check=2)
    assert "succeeded: there is nothing to retry" in done.stderr
