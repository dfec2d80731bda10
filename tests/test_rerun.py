"""Retrying a failed run: only what did not succeed runs again, in the same run log."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from runnable_trio import (
    AsyncPipeline,
    AsyncPythonTask,
    ExecutionFailedError,
    Map,
    MemoryRunLogStore,
    Parallel,
    Retry,
    RunConfigurationError,
    Status,
    pickled,
    read_run_log,
)
from runnable_trio._filestore import FileRunLogStore
from runnable_trio._rerun import retry_stream, retry_streaming
from runnable_trio._runlog import RunLog

from .helpers import collect, wait_until_dead


class Flaky:
    """Task functions that count their calls and fail where told, until fixed."""

    def __init__(self, *failing: str) -> None:
        self.calls: Counter[str] = Counter()
        self.failing = set(failing)

    def check(self, name: str) -> None:
        self.calls[name] += 1
        if name in self.failing:
            raise ValueError(f"{name} failed")


def chain(flaky: Flaky) -> AsyncPipeline:
    async def first(x: int) -> int:
        flaky.check("first")
        return x + 1

    async def second(y: int) -> int:
        flaky.check("second")
        return y * 10

    async def third(z: int) -> int:
        flaky.check("third")
        return z + 5

    return AsyncPipeline(
        [
            AsyncPythonTask("first", first, returns=["y"]),
            AsyncPythonTask("second", second, returns=["z"]),
            AsyncPythonTask("third", third, returns=["w"]),
        ]
    )


async def fail_then_retry(
    pipeline: AsyncPipeline, flaky: Flaky, **kwargs: Any
) -> tuple[RunLog, list[dict[str, Any]]]:
    with pytest.raises(ExecutionFailedError):
        await collect(pipeline, run_id="r1", **kwargs)
    flaky.failing.clear()  # the bug is fixed
    kwargs.pop("parameters", None)
    async with retry_stream(pipeline, "r1", **kwargs) as events:
        seen = [event async for event in events]
    return events.run_log, seen


async def clean_parameters(pipeline: AsyncPipeline, **kwargs: Any) -> dict[str, Any]:
    async with pipeline.stream(**kwargs) as events:
        async for _ in events:
            pass
    return events.run_log.parameters_out


async def test_retry_runs_only_what_failed_and_records_new_attempts() -> None:
    flaky = Flaky("second")
    pipeline = chain(flaky)
    run_log, _ = await fail_then_retry(pipeline, flaky, parameters={"x": 1})
    assert flaky.calls == {"first": 1, "second": 2, "third": 1}
    assert run_log.status is Status.SUCCESS
    assert run_log.parameters_out == await clean_parameters(chain(Flaky()), parameters={"x": 1})
    second = run_log.steps["second"]
    assert [(a.number, a.status) for a in second.attempts] == [
        (1, Status.FAIL),
        (2, Status.SUCCESS),
    ]
    assert second.attempts[0].error_message == "second failed"
    assert len(run_log.steps["first"].attempts) == 1
    assert len(run_log.retried_at) == 1
    # The same record, on disk.
    stored = FileRunLogStore().load("r1")
    assert stored.status is Status.SUCCESS
    assert [a.status for a in stored.steps["second"].attempts] == [Status.FAIL, Status.SUCCESS]
    assert stored.parameters_out == run_log.parameters_out


async def test_retry_of_a_map_reruns_only_the_failed_items() -> None:
    flaky = Flaky("item-3")

    async def square(item: int) -> int:
        flaky.check(f"item-{item}")
        return item * item

    branch = AsyncPythonTask("sq", square, returns=["sq"]).as_async_pipeline()
    pipeline = AsyncPipeline([Map("m", "items", "item", branch, fail_fast=False)])
    run_log, _ = await fail_then_retry(pipeline, flaky, parameters={"items": [0, 1, 2, 3, 4]})
    assert flaky.calls == {"item-0": 1, "item-1": 1, "item-2": 1, "item-3": 2, "item-4": 1}
    assert run_log.parameters_out["sq"] == [0, 1, 4, 9, 16]
    assert run_log.steps["m"].status is Status.SUCCESS


async def test_retry_of_a_parallel_reruns_only_the_failed_branch() -> None:
    flaky = Flaky("b")

    def branch(name: str) -> AsyncPipeline:
        async def work() -> str:
            flaky.check(name)
            return name.upper()

        return AsyncPythonTask("t", work, returns=[f"out_{name}"]).as_async_pipeline()

    pipeline = AsyncPipeline([Parallel("p", {"a": branch("a"), "b": branch("b")}, fail_fast=False)])
    run_log, _ = await fail_then_retry(pipeline, flaky)
    assert flaky.calls == {"a": 1, "b": 2}
    assert run_log.parameters_out == {"out_a": "A", "out_b": "B"}


class Model:
    def __init__(self, value: int) -> None:
        self.value = value


async def test_pickled_outputs_of_reused_steps_come_back_from_the_catalog() -> None:
    flaky = Flaky("use")

    async def train() -> Model:
        flaky.check("train")
        return Model(42)

    async def use(model: Model) -> int:
        flaky.check("use")
        return model.value

    pipeline = AsyncPipeline(
        [
            AsyncPythonTask("train", train, returns=[pickled("model")]),
            AsyncPythonTask("use", use, returns=["value"]),
        ]
    )
    with pytest.raises(ExecutionFailedError):
        await collect(pipeline, run_id="r1")
    flaky.failing.clear()
    # A fresh store reads the record from disk, where the model is only a repr.
    run = retry_streaming(pipeline, "r1", store=FileRunLogStore())
    assert [event async for event in run] == []
    assert flaky.calls == {"train": 1, "use": 2}
    assert run.run_log.parameters_out["value"] == 42


async def test_a_memory_store_run_can_be_retried_with_its_store(tmp_path: Path) -> None:
    (tmp_path / "memory.yaml").write_text("run_log_store:\n  type: memory\n")
    flaky = Flaky("second")
    pipeline = chain(flaky)
    store = MemoryRunLogStore()
    with pytest.raises(ExecutionFailedError):
        await collect(pipeline, run_id="m1", parameters={"x": 2}, store=store)
    flaky.failing.clear()
    retry_streaming(pipeline, "m1", store=store)  # prepared, never started
    assert store.load("m1").status is Status.FAIL  # so the record is left as it was
    async with retry_stream(pipeline, "m1", store=store) as events:
        async for _ in events:
            pass
    assert events.run_log.parameters_out["w"] == (2 + 1) * 10 + 5
    assert flaky.calls == {"first": 1, "second": 2, "third": 1}


async def test_what_cannot_be_retried_is_refused_clearly() -> None:
    pipeline = chain(Flaky())
    await collect(pipeline, run_id="done", parameters={"x": 1})
    with pytest.raises(RunConfigurationError, match="run 'done' succeeded: there is nothing"):
        retry_streaming(pipeline, "done")
    with pytest.raises(RunConfigurationError, match="no run with id 'nope' to retry"):
        retry_streaming(pipeline, "nope")
    flaky = Flaky("second")
    with pytest.raises(ExecutionFailedError):
        await collect(chain(flaky), run_id="failed", parameters={"x": 1})
    other = AsyncPipeline(list(chain(flaky).steps[:2]))
    with pytest.raises(RunConfigurationError, match="ran a different pipeline"):
        retry_streaming(other, "failed")


# --- a run whose process died --------------------------------------------------------------

_MODULE = textwrap.dedent(
    """
    import os, signal
    from pathlib import Path
    from runnable_trio import AsyncPipeline, AsyncPythonTask

    CALLS = Path("calls.txt")

    def note(name: str) -> int:
        with CALLS.open("a") as file:
            file.write(name + "\\n")
        return CALLS.read_text().splitlines().count(name)

    async def first(x: int) -> int:
        note("first")
        return x + 1

    async def second(y: int) -> int:
        if note("second") == 1:
            os.kill(os.getpid(), signal.SIGKILL)  # the process dies mid-run
        return y * 10

    pipeline = AsyncPipeline(
        [AsyncPythonTask("first", first, returns=["y"]),
         AsyncPythonTask("second", second, returns=["z"])]
    )
    """
)

_MAIN = textwrap.dedent(
    """
    import trio, crashing

    async def main() -> None:
        async for _ in crashing.pipeline.execute_streaming(run_id="crashed", parameters={"x": 1}):
            pass

    trio.run(main)
    """
)


def load_module(folder: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("crashing", folder / "crashing.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def crash(folder: Path) -> None:
    (folder / "crashing.py").write_text(_MODULE)
    (folder / "main.py").write_text(_MAIN)
    done = subprocess.run([sys.executable, "main.py"], cwd=folder, check=False)
    assert done.returncode == -9
    assert wait_until_dead(FileRunLogStore(folder / ".run_log_store"), "crashed")


@pytest.mark.slow
async def test_a_run_whose_process_died_can_be_retried(tmp_path: Path) -> None:
    crash(tmp_path)
    assert FileRunLogStore().load("crashed").status is Status.PROCESSING
    crashing = load_module(tmp_path)
    async with retry_stream(crashing.pipeline, "crashed") as events:
        async for _ in events:
            pass
    assert events.run_log.status is Status.SUCCESS
    assert events.run_log.parameters_out == {"x": 1, "y": 2, "z": 20}
    assert (tmp_path / "calls.txt").read_text().split() == ["first", "second", "second"]


async def test_a_retried_runs_retrying_events_number_attempts_as_its_record_does() -> None:
    async def broken() -> None:
        raise ValueError("broke")

    pipeline = AsyncPythonTask(
        "flaky", broken, retry=Retry(attempts=2, backoff=0)
    ).as_async_pipeline()
    with pytest.raises(ExecutionFailedError):
        await collect(pipeline, run_id="r1", attribution=True)
    retrying: list[int] = []
    with pytest.raises(ExecutionFailedError):
        async with retry_stream(pipeline, "r1", attribution=True) as events:
            async for event in events:
                if event["type"] == "step.retrying":
                    retrying.append(event["attempt"])
    record = read_run_log("r1").steps["flaky"]
    assert [attempt.number for attempt in record.attempts] == [1, 2, 3, 4]
    assert retrying == [3]  # the retry's first attempt failed: number 3 of the step's record
