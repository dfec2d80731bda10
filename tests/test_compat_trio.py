"""compat/ on a Trio host: asyncio-flavoured task functions run through trio-asyncio.

Also the other mixed case: asyncio code running on a trio-asyncio loop (inside a Trio run)
that calls ``execute_streaming()``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import sniffio
import trio
import trio.lowlevel
import trio_asyncio
from runnable import (
    AsyncPipeline,
    AsyncPythonTask,
    ExecutionFailedError,
    HostCancelledError,
    HostRun,
    Parallel,
)
from runnable.exceptions import CommandCallError

import runnable_trio
from runnable_trio import Status, StreamingRun

flavours: list[str] = []

TRIO_SOURCE = os.path.dirname(trio.__file__)


async def llm(prompt: str) -> AsyncIterator[dict[str, Any]]:
    flavours.append(sniffio.current_async_library())
    yield {"type": "status", "status": "thinking"}
    for word in prompt.split():
        await asyncio.sleep(0)
        yield {"type": "chunk", "text": word}
    yield {"type": "done", "full_text": f"Response to: {prompt}"}


async def shout(full_text: str) -> str:
    flavours.append(sniffio.current_async_library())
    await asyncio.sleep(0)
    return full_text.upper()


PIPELINE = AsyncPipeline(
    [
        AsyncPythonTask("llm", llm, returns=["full_text"]),
        AsyncPythonTask("shout", shout, returns=["loud"]),
    ]
)


async def test_asyncio_functions_run_through_trio_asyncio() -> None:
    flavours.clear()
    run = PIPELINE.execute_streaming(parameters={"prompt": "hi there"})
    assert isinstance(run, StreamingRun)  # from Trio: runnable_trio's own iterator
    events = [event async for event in run]
    assert [e["type"] for e in events] == ["status", "chunk", "chunk", "done"]
    assert run.run_log.parameters_out["loud"] == "RESPONSE TO: HI THERE"
    assert flavours == ["asyncio", "asyncio"]
    assert sniffio.current_async_library() == "trio"


async def test_functions_use_the_callers_trio_asyncio_loop() -> None:
    seen = []

    async def where() -> None:
        seen.append(asyncio.get_running_loop())

    pipeline = AsyncPythonTask("where", where).as_async_pipeline()
    async with trio_asyncio.open_loop() as loop, pipeline.stream() as events:
        assert [event async for event in events] == []
    assert seen == [loop]


class Probe:
    def __init__(self) -> None:
        self.finalized = False
        self.started = False
        self.produced = 0

    async def endless(self) -> AsyncIterator[dict[str, Any]]:
        self.started = True
        try:
            while True:
                self.produced += 1
                yield {"type": "tick"}
                await asyncio.sleep(0.001)
        finally:
            await asyncio.sleep(0)  # cleanup that itself awaits on the asyncio side
            self.finalized = True

    async def sleeper(self) -> None:
        self.started = True
        try:
            await asyncio.sleep(60)
        finally:
            await asyncio.sleep(0)
            self.finalized = True


@pytest.mark.parametrize("function", [Probe.endless, Probe.sleeper])
async def test_trio_cancellation_cancels_the_asyncio_function_and_waits(
    function: Callable[[Probe], Any],
) -> None:
    probe = Probe()
    pipeline = AsyncPythonTask("f", function.__get__(probe)).as_async_pipeline()
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery, pipeline.stream() as events:

            async def cancel_once_started() -> None:
                while not probe.started:  # the function runs on the asyncio side
                    await trio.lowlevel.checkpoint()
                scope.cancel()

            nursery.start_soon(cancel_once_started)
            async for _ in events:
                pass
    assert scope.cancelled_caught
    assert probe.finalized
    assert events.run_log.status is Status.CANCELLED
    produced = probe.produced
    await trio.sleep(0.02)
    assert probe.produced == produced


@pytest.mark.parametrize("kind", ["coroutine", "generator"])
async def test_cancelled_error_inside_the_function_fails_the_step(kind: str) -> None:
    async def coroutine() -> None:
        await asyncio.sleep(0)
        raise asyncio.CancelledError

    async def generator() -> AsyncIterator[dict[str, Any]]:
        yield {"type": "chunk"}
        raise asyncio.CancelledError

    function = coroutine if kind == "coroutine" else generator
    with trio.fail_after(30):  # never hangs
        with pytest.raises(ExecutionFailedError) as caught:
            async for _ in AsyncPythonTask("f", function).as_async_pipeline().execute_streaming():
                pass
    assert isinstance(caught.value.__cause__, HostCancelledError)


async def test_failure_chains_the_functions_exception() -> None:
    async def broken() -> None:
        await asyncio.sleep(0)
        raise ValueError("model crashed")

    with pytest.raises(ExecutionFailedError) as caught:
        async for _ in AsyncPythonTask("f", broken).as_async_pipeline().execute_streaming():
            pass
    assert isinstance(caught.value.__cause__, CommandCallError)
    assert isinstance(caught.value.__cause__.__cause__, ValueError)
    assert caught.value.step == "f"


async def test_streaming_from_asyncio_code_on_a_trio_asyncio_loop() -> None:
    # asyncio-flavoured code inside a Trio run: the stream runs in that Trio run, and the
    # task functions on the caller's loop.
    async def consume() -> tuple[list[dict[str, Any]], Any]:
        assert sniffio.current_async_library() == "asyncio"
        run = PIPELINE.execute_streaming(parameters={"prompt": "a b"})
        assert isinstance(run, HostRun)
        return [event async for event in run], run.run_log

    flavours.clear()
    async with trio_asyncio.open_loop():
        events, run_log = await trio_asyncio.aio_as_trio(consume)()
    assert events[-1] == {"type": "done", "full_text": "Response to: a b"}
    assert run_log.status is Status.SUCCESS
    assert flavours == ["asyncio", "asyncio"]


async def test_parallel_asyncio_branches_run_concurrently() -> None:
    arrived = 0
    everyone = asyncio.Event()

    def branch(name: str) -> AsyncPipeline:
        async def work() -> str:
            # A barrier: no branch returns before all three have started, so this ends only
            # if they run at once (in turn, the first would wait forever).
            nonlocal arrived
            flavours.append(sniffio.current_async_library())
            arrived += 1
            if arrived == 3:
                everyone.set()
            await everyone.wait()
            return name

        return AsyncPythonTask(name, work, returns=[f"{name}_result"]).as_async_pipeline()

    flavours.clear()
    pipeline = AsyncPipeline([Parallel("all", branches={n: branch(n) for n in ("a", "b", "c")})])
    with trio.fail_after(30):
        async with trio_asyncio.open_loop(), pipeline.stream() as events:
            async for _ in events:
                pass
    assert events.run_log.parameters_out["c_result"] == "c"
    assert flavours == ["asyncio"] * 3


# --- the reference's surface, on a Trio host -----------------------------------------------


async def translated() -> AsyncIterator[dict[str, Any]]:
    await asyncio.sleep(0)
    yield {"type": "done", "spanish_translation": "hola"}


async def test_the_reference_surface_holds_on_a_trio_host(monkeypatch: pytest.MonkeyPatch) -> None:
    from runnable import exceptions, read_run_log, retry_streaming

    monkeypatch.setenv("RUNNABLE_RUN_ID", "trio-env-id")
    pipeline = AsyncPythonTask("t", translated, returns=["translation_result"]).as_async_pipeline()
    async with trio_asyncio.open_loop():
        run = pipeline.execute_streaming()
        assert isinstance(run, StreamingRun)
        assert run.run_id == "trio-env-id"
        async for _ in run:
            pass
        # By position, as in the reference, on this surface too.
        assert run.run_log.parameters_out["translation_result"] == "hola"
        with pytest.raises(exceptions.RunLogExistsError):
            pipeline.execute_streaming()
        with pytest.raises(exceptions.RetryValidationError, match="succeeded"):
            retry_streaming(pipeline, "trio-env-id")
    assert read_run_log("trio-env-id").status is Status.SUCCESS


STEP_CODES = {
    runnable_trio.AsyncPythonTask._execute.__code__,
    runnable_trio.AsyncPythonTask.run_alone.__code__,
}


async def waiting_stacks(pipeline: AsyncPipeline, release: asyncio.Event) -> list[list[str]]:
    """The stacks, from the step's own frame down (not Trio's), of every waiting step."""
    stacks: list[list[str]] = []
    with trio.fail_after(30):
        async with trio_asyncio.open_loop(), pipeline.stream() as events:
            await trio.testing.wait_all_tasks_blocked()
            tasks = [trio.lowlevel.current_root_task()]
            while tasks:
                task = tasks.pop()
                assert task is not None
                codes = [frame.f_code for frame, _ in task.iter_await_frames()]
                at = [i for i, code in enumerate(codes) if code in STEP_CODES]
                if at:
                    below = codes[at[0] :]
                    ours = [c for c in below if not c.co_filename.startswith(TRIO_SOURCE)]
                    stacks.append([code.co_name for code in ours])
                tasks.extend(child for n in task.child_nurseries for child in n.child_tasks)
            release.set()
            async for _ in events:
                pass
    assert events.run_log.status is Status.SUCCESS
    return stacks


async def test_a_waiting_asyncio_function_adds_few_frames_to_its_trio_task() -> None:
    # Every switch of a step's Trio task passes through each frame of its stack, and a
    # Parallel or Map holds one stack per branch: from runnable_trio's _execute down, the task
    # waits in compat's _guard_call and await_on_loop (then Trio's own).
    release = asyncio.Event()

    async def waiting() -> None:
        await release.wait()

    pipeline = AsyncPythonTask("w", waiting).as_async_pipeline()
    stacks = await waiting_stacks(pipeline, release)
    assert stacks == [["_execute", "_guard_call", "await_on_loop"]]


async def test_a_branch_of_one_asyncio_task_runs_alone() -> None:
    # compat drives the function through runnable_trio's extension points only (no _execute
    # of its own), so such a branch keeps run_alone: one frame where run_branch, run_step and
    # _execute would be three.
    release = asyncio.Event()

    async def waiting() -> None:
        await release.wait()

    task = AsyncPythonTask("w", waiting)
    assert task.runs_alone
    pipeline = AsyncPipeline(
        [Parallel("fan", branches={"a": task.as_async_pipeline(), "b": task.as_async_pipeline()})]
    )
    stacks = await waiting_stacks(pipeline, release)
    assert stacks == [["run_alone", "_guard_call", "await_on_loop"]] * 2
