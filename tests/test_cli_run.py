"""``run``: plain lines off a terminal, JSON lines, exit statuses, Ctrl-C, bad targets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from runnable_trio import read_run_log

from .cli_support import TIMEOUT, cli, wait_for, write_targets

# Each test starts several interpreters: on a loaded machine that takes a while.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ANSI = "\x1b["


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    write_targets(tmp_path)
    return tmp_path


def test_import_runnable_trio_loads_neither_rich_nor_click() -> None:
    code = (
        "import sys, runnable_trio; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('rich', 'click')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=TIMEOUT, check=True)  # fmt: skip
    assert done.stdout.strip() == "[]"


def test_run_prints_a_plain_line_per_lifecycle_event(folder: Path) -> None:
    done = cli(folder, "run", "targets:greet", "-p", "name=trio", "--run-id", "r1", check=0)
    assert ANSI not in done.stdout
    lines = done.stdout.splitlines()
    kinds = [line.split()[1] for line in lines[:-1]]
    assert kinds == ["run.started", "step.started", "step.completed", "run.completed"]
    assert "greet" in lines[1]
    assert lines[-1].startswith("run r1: SUCCESS in ")
    record = read_run_log("r1")
    assert record.parameters_out["greeting"] == "hello trio"


def test_parameters_parse_as_json_else_as_strings(folder: Path) -> None:
    cli(folder, "run", "targets:greet", "-p", "name=[1, 2]", "--run-id", "j", check=0)
    assert read_run_log("j").parameters_in == {"name": [1, 2]}
    cli(folder, "run", "targets:greet", "-p", "name=not json", "--run-id", "s", check=0)
    assert read_run_log("s").parameters_in == {"name": "not json"}
    done = cli(folder, "run", "targets:greet", "-p", "novalue", check=2)
    assert "NAME=VALUE" in done.stderr


def test_events_jsonl_prints_every_event(folder: Path) -> None:
    done = cli(folder, "run", "targets:greet", "--events", "jsonl", "--tag", "t", check=0)
    events = [json.loads(line) for line in done.stdout.splitlines()]
    types = [event["type"] for event in events]
    assert types == ["run.started", "step.started", "token", "token", "done",
                     "step.completed", "run.completed"]  # fmt: skip
    assert [event["_meta"]["seq"] for event in events] == list(range(1, 8))


def test_events_none_prints_nothing_and_file_targets_work(folder: Path) -> None:
    (folder / "sub").mkdir()
    (folder / "sub" / "mod.py").write_text(
        "from targets import greet\nfactory = lambda: greet\n", encoding="utf-8"
    )
    done = cli(folder, "run", "sub/mod.py:factory", "--events", "none", check=0)
    assert done.stdout == ""


def test_a_failed_run_exits_1_naming_the_error_and_the_step(folder: Path) -> None:
    done = cli(folder, "run", "targets:failing", "-p", "v=2", "-p", "x=7", "--run-id", "f",
               check=1)  # fmt: skip
    assert "ValueError: boom 7" in done.stderr
    assert "failing step: explode" in done.stderr
    assert "step.failed" in done.stdout
    assert read_run_log("f").status == "FAIL"


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("nosuchmodule:pipeline", "cannot import 'nosuchmodule': ModuleNotFoundError"),
        ("targets:missing", "'targets' has no attribute 'missing'"),
        ("targets:not_a_pipeline", "must be an AsyncPipeline"),
        ("targets", "TARGET must be module:attr"),
        ("nofile.py:pipeline", "no file 'nofile.py'"),
    ],
)
def test_a_target_that_does_not_load_is_a_usage_error(
    folder: Path, target: str, message: str
) -> None:
    done = cli(folder, "run", target, check=2)
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_a_target_whose_module_raises_is_a_usage_error(folder: Path) -> None:
    (folder / "broken.py").write_text("raise RuntimeError('cannot start')\n", encoding="utf-8")
    done = cli(folder, "run", "broken.py:pipeline", check=2)
    assert "RuntimeError: cannot start" in done.stderr


def test_an_unknown_option_is_a_usage_error(folder: Path) -> None:
    done = cli(folder, "run", "targets:greet", "--no-such-option", check=2)
    assert "No such option" in done.stderr


def test_ctrl_c_cancels_the_run_cleanly(folder: Path) -> None:
    lines: list[str] = []
    with subprocess.Popen(
        [sys.executable, "-m", "runnable_trio", "run", "targets:gated",
         "-p", "gate=never", "--run-id", "c1"],
        cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    ) as process:  # fmt: skip
        reader = threading.Thread(target=lambda: lines.extend(process.stdout or ()), daemon=True)
        reader.start()
        try:
            wait_for(lambda: any("step.started" in line and "gate" in line for line in lines),
                     "the gate step to start")  # fmt: skip
            os.kill(process.pid, signal.SIGINT)
            assert process.wait(timeout=TIMEOUT) == 130
        finally:
            process.kill()
        reader.join(TIMEOUT)
        assert process.stderr is not None
        assert "interrupted" in process.stderr.read()
    assert lines[-1].startswith("run c1: CANCELLED")
    assert read_run_log("c1").status == "CANCELLED"


def test_console_scripts_run_the_same_commands(folder: Path) -> None:
    done = cli(folder, "run", "targets:greet", "--run-id", "a", script="runnable-trio", check=0)
    assert done.stdout.splitlines()[-1].startswith("run a: SUCCESS")
    done = cli(folder, "run", "targets:greet", "--run-id", "b", script="runnable", check=0)
    assert done.stdout.splitlines()[-1].startswith("run b: SUCCESS")
    done = cli(folder, "--help", script="runnable", check=0)
    assert "Usage: runnable " in done.stdout
    for command in ("run", "runs", "show", "timeline", "replay", "retry", "graph"):
        assert command in done.stdout


COMPAT_TARGET = """
import asyncio
from runnable import AsyncPipeline, AsyncPythonTask

async def hi(name: str = "x"):
    await asyncio.sleep(0.01)
    yield {"type": "chunk", "text": name}
    yield {"type": "done", "out": name}

pipeline = AsyncPipeline(steps=[AsyncPythonTask(name="hi", function=hi, returns=["out"])])
"""


def test_runnable_runs_a_compat_pipeline_of_asyncio_tasks(folder: Path) -> None:
    (folder / "compat_target.py").write_text(COMPAT_TARGET, encoding="utf-8")
    done = cli(folder, "run", "compat_target.py:pipeline", "-p", "name=aio", "--events", "jsonl",
               "--run-id", "aio", script="runnable", check=0)  # fmt: skip
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert {"type": "chunk", "text": "aio"} in [
        {k: v for k, v in event.items() if k != "_meta"} for event in events
    ]
    assert read_run_log("aio").parameters_out["out"] == "aio"


def test_a_reader_that_leaves_cancels_the_run(folder: Path) -> None:
    command = f"{sys.executable} -m runnable_trio run targets:endless --run-id p --events jsonl"
    done = subprocess.run(["bash", "-c", f"set -o pipefail; {command} | head -n 1"],
                          cwd=folder, capture_output=True, text=True, timeout=TIMEOUT)  # fmt: skip
    assert json.loads(done.stdout)["type"] == "run.started"
    assert done.returncode == 141
    assert "Traceback" not in done.stderr
    assert read_run_log("p").status == "CANCELLED"
