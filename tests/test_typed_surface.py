"""What a user's type checker sees: both packages are typed (``py.typed``), events and
lifecycle events have types, compat's surfaces are not ``Any``.

mypy runs on a small user program against copies of the two packages placed as installed
packages are (on ``PYTHONPATH``, where PEP 561 requires ``py.typed``), so a missing marker shows
as mypy refusing to analyse the package.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import trio

ROOT = Path(__file__).resolve().parent.parent

PROGRAM = """
import runnable
from runnable_trio import AsyncPipeline, AsyncPythonTask, Lifecycle, Meta, RunFailed, StepFailed


async def hello() -> None:
    pass


async def main() -> None:
    pipeline = AsyncPipeline([AsyncPythonTask("hello", hello)])
    run = pipeline.execute_streaming()
    reveal_type(run)
    async for event in run:
        reveal_type(event)
    async with pipeline.stream() as events:
        reveal_type(events)
    reveal_type(Lifecycle.RUN_FAILED)
    compat = runnable.AsyncPipeline([runnable.AsyncPythonTask("h", hello)])
    reveal_type(compat.execute_streaming())
    reveal_type(runnable.replay("r"))


def failed(event: RunFailed, step: StepFailed, meta: Meta) -> None:
    reveal_type(event["error_message"])
    reveal_type(event["step"])
    reveal_type(step["kind"])
    reveal_type(meta["seq"])
"""

EXPECTED = [
    "runnable_trio._streaming.StreamingRun",
    "dict[str, Any]",
    "runnable_trio._stream.EventStream",
    "Literal[runnable_trio._events.Lifecycle.RUN_FAILED]?",
    "runnable._pipeline.HostRun | runnable._pipeline.HostRetry"
    " | runnable_trio._streaming.StreamingRun",
    "runnable_trio._replay.Replay | runnable._guest.HostStream",
    "str",
    "str | None",
    "str",
    "int",
]


def mypy(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    (tmp_path / "program.py").write_text(PROGRAM)
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "program.py"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=600,
    )


def installed(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "runnable_trio", site / "runnable_trio", ignore=ignore)
    shutil.copytree(ROOT / "compat" / "runnable", site / "runnable", ignore=ignore)
    return site


@pytest.mark.slow
def test_a_user_program_sees_the_typed_surface(tmp_path: Path) -> None:
    installed(tmp_path)
    done = mypy(tmp_path)
    revealed = [
        line.split('Revealed type is "', 1)[1].rstrip('"')
        for line in done.stdout.splitlines()
        if "Revealed type is" in line
    ]
    assert revealed == EXPECTED, done.stdout
    assert done.returncode == 0, done.stdout


@pytest.mark.parametrize("package", ["runnable_trio", "runnable"])
def test_both_packages_ship_py_typed(package: str) -> None:
    folder = ROOT / "runnable_trio" if package == "runnable_trio" else ROOT / "compat" / "runnable"
    assert (folder / "py.typed").is_file()


async def test_every_lifecycle_event_has_the_keys_of_its_typed_dict(
    autojump_clock: object,
) -> None:
    """The TypedDicts are what is sent: a run that retries, fails, recovers in parallel and
    then fails emits each kind of lifecycle event with exactly its declared keys."""
    import typing

    import runnable_trio as rt

    typed = {
        "run.started": rt.RunStarted,
        "run.completed": rt.RunCompleted,
        "run.failed": rt.RunFailed,
        "run.cancelled": rt.RunCancelled,
        "step.started": rt.StepStarted,
        "step.completed": rt.StepCompleted,
        "step.failed": rt.StepFailed,
        "step.retrying": rt.StepRetrying,
        "step.cancelled": rt.StepCancelled,
    }
    assert sorted(typed) == sorted(member.value for member in rt.Lifecycle)

    async def broken() -> None:
        raise ValueError("broken")

    a_started = trio.Event()

    async def slow() -> None:
        a_started.set()
        await trio.sleep(10)

    async def broken_once_a_runs() -> None:
        await a_started.wait()  # so that a is running, and is cancelled, when b fails
        raise ValueError("broken")

    pipeline = rt.AsyncPipeline(
        [
            rt.AsyncPythonTask("flaky", broken, retry=rt.Retry(attempts=2, backoff=0.1)),
        ]
    )
    fan = rt.AsyncPipeline(
        [
            rt.Parallel(
                "fan",
                branches={
                    "a": rt.AsyncPythonTask("a", slow).as_async_pipeline(),
                    "b": rt.AsyncPythonTask("b", broken_once_a_runs).as_async_pipeline(),
                },
            )
        ]
    )
    ok = rt.AsyncPythonTask("ok", slow).as_async_pipeline()
    seen: dict[str, set[str]] = {}
    for each in (pipeline, fan, ok):
        store = rt.MemoryRunLogStore()
        try:
            async for event in each.execute_streaming(attribution=True, store=store):
                seen.setdefault(event["type"], set()).add(",".join(sorted(event)))
        except rt.ExecutionFailedError:
            pass
    for name, keys in seen.items():
        hints = typing.get_type_hints(typed[name])
        assert keys == {",".join(sorted(hints))}, name
    assert set(seen) == set(typed) - {"run.cancelled"}  # cancelled: not while listening
    # One name per meaning: the failing step is "step", the message "error_message".
    assert "error" not in {k for keys in seen.values() for k in ",".join(keys).split(",")}
