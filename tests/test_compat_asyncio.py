"""compat/ on an asyncio host: the Trio engine as a guest of the running asyncio loop.

Plain sync tests that run their own asyncio loop (pytest-trio's trio_mode would claim async
ones). The loop is built with an explicit factory because importing trio-asyncio (which the
Trio-host tests do) makes ``asyncio.new_event_loop()`` build trio-asyncio loops for the rest
of the process; the reference's examples run with a plain ``asyncio.run`` in their own process
in ``test_compat_examples.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

import pytest
import sniffio
import trio
from runnable import (
    AsyncPipeline,
    AsyncPythonTask,
    ExecutionFailedError,
    HostCancelledError,
    HostRun,
    Map,
    Parallel,
    replay,
)
from runnable._aio import GENERATOR_CAPACITY
from runnable.exceptions import CommandCallError

from runnable_trio import Status


def run_asyncio(main: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    with asyncio.Runner(loop_factory=asyncio.SelectorEventLoop) as runner:
        return runner.run(main())


#: An overall bound for waits on a condition: generous, so that no load makes it expire; the
#: tests synchronise on events and states, never on how long something takes.
PATIENCE = 30.0


async def wait_for(event: asyncio.Event, seconds: float = PATIENCE) -> None:
    async with asyncio.timeout(seconds):
        await event.wait()


async def until(condition: Callable[[], bool]) -> None:
    """Yield to the loop until ``condition()`` holds (at most ``PATIENCE`` seconds)."""
    async with asyncio.timeout(PATIENCE):
        while not condition():
            await asyncio.sleep(0)


def trio_is_running() -> bool:
    try:
        trio.lowlevel.current_trio_token()
    except RuntimeError:
        return False
    return True


async def llm(prompt: str) -> AsyncIterator[dict[str, Any]]:
    yield {"type": "status", "status": "thinking"}
    for word in prompt.split():
        await asyncio.sleep(0)
        yield {"type": "chunk", "text": word}
    yield {"type": "done", "full_text": f"Response to: {prompt}"}


async def shout(full_text: str) -> str:
    await asyncio.sleep(0)
    return full_text.upper()


LLM_THEN_SHOUT = AsyncPipeline(
    [
        AsyncPythonTask("llm", llm, returns=["full_text"]),
        AsyncPythonTask("shout", shout, returns=["loud"]),
    ]
)


class Probe:
    """An endless asyncio generator task that records how far it got and how it ended."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.finalized = asyncio.Event()
        self.produced = 0

    async def endless(self) -> AsyncIterator[dict[str, Any]]:
        self.started.set()
        try:
            while True:
                self.produced += 1
                yield {"type": "tick", "n": self.produced}
                await asyncio.sleep(0.001)
        finally:
            self.finalized.set()

    def pipeline(self) -> AsyncPipeline:
        return AsyncPythonTask("endless", self.endless).as_async_pipeline()


# --- running -----------------------------------------------------------------------------


def test_stream_of_a_two_step_pipeline() -> None:
    async def main() -> tuple[list[dict[str, Any]], Any]:
        run = LLM_THEN_SHOUT.execute_streaming(parameters={"prompt": "hi there"})
        assert isinstance(run, HostRun)
        return [event async for event in run], run.run_log

    events, run_log = run_asyncio(main)
    assert events == [
        {"type": "status", "status": "thinking"},
        {"type": "chunk", "text": "hi"},
        {"type": "chunk", "text": "there"},
        {"type": "done", "full_text": "Response to: hi there"},
    ]
    assert run_log.status is Status.SUCCESS
    assert run_log.parameters_out["loud"] == "RESPONSE TO: HI THERE"


def test_stream_context_manager() -> None:
    async def main() -> list[dict[str, Any]]:
        async with LLM_THEN_SHOUT.stream(parameters={"prompt": "a"}, attribution=True) as events:
            return [event async for event in events]

    events = run_asyncio(main)
    user = [e for e in events if e["type"] in {"chunk", "done"}]
    assert [e["_meta"]["step"] for e in user] == ["llm", "llm"]
    assert [e["_meta"]["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["type"] == "run.completed"


def test_task_functions_run_on_the_host_loop_in_its_thread() -> None:
    seen: list[tuple[str, asyncio.AbstractEventLoop, int]] = []

    async def main() -> None:
        lock = asyncio.Lock()  # bound to this loop on first use
        queue: asyncio.Queue[str] = asyncio.Queue()
        await queue.put("from the application")

        async def coroutine() -> str:
            async with lock:
                seen.append(
                    (
                        sniffio.current_async_library(),
                        asyncio.get_running_loop(),
                        threading.get_ident(),
                    )
                )
                return await queue.get()

        async def generator(message: str) -> AsyncIterator[dict[str, Any]]:
            async with lock:
                seen.append(
                    (
                        sniffio.current_async_library(),
                        asyncio.get_running_loop(),
                        threading.get_ident(),
                    )
                )
            yield {"type": "done", "echo": message}

        pipeline = AsyncPipeline(
            [
                AsyncPythonTask("get", coroutine, returns=["message"]),
                AsyncPythonTask("echo", generator, returns=["echo"]),
            ]
        )
        async with lock:  # the lock is used by the host before and while the run waits
            run = pipeline.execute_streaming()
            task = asyncio.create_task(anext(run))
            await asyncio.sleep(0.01)
            assert not task.done()
        assert await task == {"type": "done", "echo": "from the application"}
        assert [event async for event in run] == []
        loop = asyncio.get_running_loop()
        assert seen == [("asyncio", loop, threading.get_ident())] * 2

    run_asyncio(main)


def test_a_plain_function_runs_in_a_worker_thread() -> None:
    def blocking(text: str) -> tuple[str, int]:
        return text.upper(), threading.get_ident()

    async def main() -> Any:
        task = AsyncPythonTask("sync", blocking, returns=["upper", "thread"])
        run = task.as_async_pipeline().execute_streaming(parameters={"text": "quiet"})
        assert [event async for event in run] == []
        return run.run_log.parameters_out

    out = run_asyncio(main)
    assert out["upper"] == "QUIET"
    assert out["thread"] != threading.get_ident()  # never on the event loop's thread


def test_concurrent_streams_share_one_guest_run_that_ends_with_the_last() -> None:
    async def main() -> None:
        assert not trio_is_running()
        first = LLM_THEN_SHOUT.execute_streaming(parameters={"prompt": "one"})
        second = LLM_THEN_SHOUT.execute_streaming(parameters={"prompt": "two"})
        await anext(first)
        await anext(second)
        token = trio.lowlevel.current_trio_token()  # the guest run, seen from the host
        assert [e async for e in first][-1] == {"type": "done", "full_text": "Response to: one"}
        assert trio.lowlevel.current_trio_token() is token  # still the same run
        assert [e async for e in second][-1] == {"type": "done", "full_text": "Response to: two"}
        await until(lambda: not trio_is_running())
        # A later stream starts a new guest run.
        assert [e async for e in LLM_THEN_SHOUT.execute_streaming(parameters={"prompt": "x"})]

    run_asyncio(main)


def test_per_request_environment_pattern_is_safe_under_concurrency() -> None:
    # The reference's documented FastAPI pattern: set os.environ, call, pop. Parameters are
    # read at the call, so concurrent requests cannot answer each other's prompts.
    async def request(prompt: str) -> str:
        os.environ["RUNNABLE_PRM_prompt"] = prompt  # noqa: SIM112 (the reference's name)
        try:
            run = LLM_THEN_SHOUT.execute_streaming()
        finally:
            os.environ.pop("RUNNABLE_PRM_prompt", None)
        events = [event async for event in run]
        return str(events[-1]["full_text"])

    async def main() -> list[str]:
        return await asyncio.gather(*(request(f"prompt {i}") for i in range(20)))

    assert run_asyncio(main) == [f"Response to: prompt {i}" for i in range(20)]


def test_iterated_from_different_tasks() -> None:
    # Starlette may drive one response generator from more than one task.
    async def main() -> list[dict[str, Any]]:
        async def event_stream() -> AsyncIterator[dict[str, Any]]:
            async for event in LLM_THEN_SHOUT.execute_streaming(parameters={"prompt": "a b c"}):
                yield event

        body = event_stream()
        events = []
        while True:
            try:
                events.append(await asyncio.create_task(anext(body)))
            except StopAsyncIteration:
                return events

    assert [e["type"] for e in run_asyncio(main)] == ["status", "chunk", "chunk", "chunk", "done"]


# --- failures ----------------------------------------------------------------------------


def test_failure_ends_the_stream_with_execution_failed_error() -> None:
    async def broken() -> AsyncIterator[dict[str, Any]]:
        yield {"type": "chunk", "text": "partial"}
        raise ValueError("model crashed")

    async def main() -> None:
        events = []
        run = AsyncPythonTask("gen", broken).as_async_pipeline().execute_streaming(run_id="r-1")
        with pytest.raises(ExecutionFailedError) as caught:
            async for event in run:
                events.append(event)
        assert events == [{"type": "chunk", "text": "partial"}]
        assert caught.value.run_id == "r-1"
        assert caught.value.step == "gen"
        assert isinstance(caught.value.__cause__, CommandCallError)
        assert isinstance(caught.value.__cause__.__cause__, ValueError)
        assert run.run_log.status is Status.FAIL

    run_asyncio(main)


@pytest.mark.parametrize("kind", ["coroutine", "generator"])
def test_cancelled_error_inside_the_function_fails_the_step(kind: str) -> None:
    async def coroutine() -> None:
        await asyncio.sleep(0)
        raise asyncio.CancelledError

    async def generator() -> AsyncIterator[dict[str, Any]]:
        yield {"type": "chunk"}
        raise asyncio.CancelledError

    function = coroutine if kind == "coroutine" else generator

    async def main() -> None:
        run = AsyncPythonTask("f", function).as_async_pipeline().execute_streaming()
        async with asyncio.timeout(2):  # never hangs
            with pytest.raises(ExecutionFailedError) as caught:
                async for _ in run:
                    pass
        assert isinstance(caught.value.__cause__, HostCancelledError)
        assert isinstance(caught.value.__cause__.__cause__, asyncio.CancelledError)
        assert run.run_log.status is Status.FAIL

    run_asyncio(main)


# --- leaving the stream ------------------------------------------------------------------


async def leave_by_aclose(pipeline: AsyncPipeline) -> Any:
    run = pipeline.execute_streaming()
    await anext(run)
    await run.aclose()
    return run.run_log


async def leave_by_exception_in_stream_block(pipeline: AsyncPipeline) -> Any:
    with pytest.raises(KeyError):
        async with pipeline.stream() as events:
            async for _ in events:
                raise KeyError("consumer failed")
    return events.run_log


async def leave_by_timeout(pipeline: AsyncPipeline) -> Any:
    run = pipeline.execute_streaming()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(None) as timeout:
            async for _ in run:
                # The run is going: expire now (a fixed delay could expire before it starts).
                timeout.reschedule(asyncio.get_running_loop().time())
    return run.run_log


async def leave_by_task_cancel(pipeline: AsyncPipeline) -> Any:
    run = pipeline.execute_streaming()
    consuming = asyncio.Event()

    async def consume() -> None:
        async for _ in run:
            consuming.set()

    task = asyncio.create_task(consume())
    await wait_for(consuming)  # the run is going: the cancellation lands mid-stream
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    return run.run_log


async def leave_by_aclosing_block(pipeline: AsyncPipeline) -> Any:
    async with contextlib.aclosing(pipeline.execute_streaming()) as run:
        await anext(run)
    return run.run_log


@pytest.mark.parametrize(
    "leave",
    [
        leave_by_aclose,
        leave_by_exception_in_stream_block,
        leave_by_timeout,
        leave_by_task_cancel,
        leave_by_aclosing_block,
    ],
)
def test_leaving_cancels_the_run_and_waits_for_it(
    leave: Callable[[AsyncPipeline], Awaitable[Any]],
) -> None:
    async def main() -> None:
        probe = Probe()
        run_log = await leave(probe.pipeline())
        # Waited for: the function's finally already ran and the record is final.
        assert probe.finalized.is_set()
        assert run_log.status is Status.CANCELLED
        assert run_log.steps["endless"].status is Status.CANCELLED
        produced = probe.produced
        await asyncio.sleep(0.02)
        assert probe.produced == produced

    run_asyncio(main)


def test_break_out_of_the_loop_cancels_the_run() -> None:
    async def main() -> None:
        probe = Probe()
        run = probe.pipeline().execute_streaming()
        run_log = run.run_log
        async for _ in run:
            break
        del run
        gc.collect()
        await wait_for(probe.finalized)
        await until(lambda: run_log.status is not Status.PROCESSING)
        assert run_log.status is Status.CANCELLED

    run_asyncio(main)


def test_cancelling_the_run_cancels_a_coroutine_function_and_waits_for_it() -> None:
    ended = []
    started = asyncio.Event()

    async def slow() -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        finally:
            await asyncio.sleep(0)  # cleanup that itself awaits
            ended.append("finally")

    async def main() -> None:
        run = AsyncPythonTask("slow", slow).as_async_pipeline().execute_streaming()

        async def expire_once_started(scope: asyncio.Timeout) -> None:
            await wait_for(started)
            scope.reschedule(asyncio.get_running_loop().time())

        with pytest.raises(TimeoutError):
            async with asyncio.timeout(None) as timeout:
                expiring = asyncio.create_task(expire_once_started(timeout))
                async for _ in run:
                    pass
        await expiring
        assert ended == ["finally"]
        assert run.run_log.status is Status.CANCELLED

    run_asyncio(main)


def test_loop_shutdown_cancels_a_run_nobody_closed() -> None:
    probe = Probe()
    kept: list[HostRun] = []

    async def main() -> None:
        run = probe.pipeline().execute_streaming()
        kept.append(run)  # still referenced: not cancelled by garbage collection
        await anext(run)

    run_asyncio(main)
    # asyncio.run's shutdown cancelled the guest run and waited for it.
    assert probe.finalized.is_set()
    assert kept[0].run_log.status is Status.CANCELLED
    assert not trio_is_running()


def test_a_slow_consumer_bounds_how_far_the_producer_runs_ahead() -> None:
    produced = 0

    async def fast() -> AsyncIterator[dict[str, Any]]:
        nonlocal produced
        while True:
            produced += 1
            yield {"type": "tick"}
            await asyncio.sleep(0)

    async def main() -> None:
        run = AsyncPythonTask("fast", fast).as_async_pipeline().execute_streaming(buffer_size=4)
        await anext(run)
        # The hand-offs fill up while nobody consumes...
        await until(lambda: produced >= GENERATOR_CAPACITY)
        # ... and then the producer stops: given many more turns of the loop (a count, not a
        # duration), an unbounded one would produce one event per turn.
        for _ in range(5 * GENERATOR_CAPACITY):
            await asyncio.sleep(0)
        # Bounded: the run's channel, the asyncio-side hand-off and the generator's hand-off.
        assert produced <= 4 + 4 + GENERATOR_CAPACITY + 2
        await run.aclose()

    run_asyncio(main)


# --- composite steps ---------------------------------------------------------------------


async def translate(text: str, language: str) -> AsyncIterator[dict[str, Any]]:
    yield {"type": "status", "language": language}
    await asyncio.sleep(0.2)
    yield {"type": "done", "result": f"[{language}] {text}"}


def test_parallel_branches_run_concurrently_on_the_host_loop() -> None:
    def branch(language: str) -> AsyncPipeline:
        async def one(text: str) -> AsyncIterator[dict[str, Any]]:
            async for event in translate(text, language):
                if event["type"] == "done":
                    event = {"type": "done", f"{language}_text": event["result"]}
                yield event

        return AsyncPythonTask(language, one, returns=[f"{language}_text"]).as_async_pipeline()

    pipeline = AsyncPipeline(
        [Parallel("translate", branches={lang: branch(lang) for lang in ("es", "fr", "de")})]
    )

    async def main() -> Any:
        run = pipeline.execute_streaming(parameters={"text": "hi"})
        events = [event async for event in run]
        # Every branch's first event came before any branch's last: they ran at once (one
        # after another, each would have ended before the next started).
        assert [e["type"] for e in events[:3]] == ["status"] * 3
        return run.run_log

    run_log = run_asyncio(main)
    assert run_log.parameters_out["fr_text"] == "[fr] hi"


def test_map_over_items_from_asyncio() -> None:
    branch = AsyncPythonTask("translate", translate, returns=["result"]).as_async_pipeline()
    pipeline = AsyncPipeline(
        [Map("each", iterate_on="languages", iterate_as="language", branch=branch)]
    )

    async def main() -> Any:
        parameters = {"text": "hi", "languages": ["es", "fr", "de", "it"]}
        async with pipeline.stream(parameters=parameters) as events:
            async for _ in events:
                pass
        return events.run_log

    run_log = run_asyncio(main)
    assert run_log.parameters_out["result"] == ["[es] hi", "[fr] hi", "[de] hi", "[it] hi"]


# --- the package -------------------------------------------------------------------------


def test_public_names() -> None:
    import runnable

    public = {name for name in vars(runnable) if not name.startswith("_")}
    private_modules = {"_aio", "_guest", "_pipeline", "_reader", "_replay", "_steps", "_task"}
    assert set(runnable.__all__) == public - {"sdk"}
    assert {"defaults", "exceptions", "names"} <= set(runnable.__all__)
    assert private_modules <= set(vars(runnable))
    assert set(runnable.__all__) >= {
        "AsyncPipeline",
        "AsyncPythonTask",
        "Parallel",
        "Map",
        "Conditional",
        "Loop",
        "Stub",
        "Catalog",
        "json",
        "pickled",
        "metric",
        "ExecutionFailedError",
    }
    # Every step kind builds pipelines that stream from asyncio code.
    assert isinstance(runnable.Stub("s").as_async_pipeline(), runnable.AsyncPipeline)


def test_importing_runnable_leaves_asyncio_alone() -> None:
    # trio-asyncio patches asyncio for the whole process when imported; an asyncio
    # application must not get that from `import runnable`.
    check = (
        "import sys, asyncio, runnable\n"
        "assert 'trio_asyncio' not in sys.modules\n"
        "async def main():\n"
        "    return type(asyncio.get_running_loop()).__module__\n"
        "print(asyncio.run(main()))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "asyncio.unix_events"


def test_two_tasks_waiting_on_one_stream_is_an_error() -> None:
    async def main() -> None:
        go = asyncio.Event()

        entered = asyncio.Event()

        async def gated() -> AsyncIterator[dict[str, Any]]:
            entered.set()
            await go.wait()
            yield {"type": "tick"}

        run = AsyncPythonTask("gated", gated).as_async_pipeline().execute_streaming()
        first = asyncio.create_task(anext(run))
        await wait_for(entered)  # the first task started the run and waits: nothing produced
        with pytest.raises(RuntimeError, match="another task is already waiting"):
            await anext(run)
        go.set()
        assert await first == {"type": "tick"}
        await run.aclose()

    run_asyncio(main)


def test_replay_from_asyncio() -> None:
    async def main() -> None:
        run = LLM_THEN_SHOUT.execute_streaming(parameters={"prompt": "a b c"}, event_log=True)
        live = [event async for event in run]
        resumed = replay(run.run_id, after=2)
        assert [event async for event in resumed] == live[2:]
        assert resumed.last_seq == len(live)

    run_asyncio(main)


@pytest.mark.parametrize("method", ["execute_streaming", "stream"])
def test_streaming_methods_take_runnable_trios_arguments(method: str) -> None:
    import inspect

    import runnable_trio

    ours = inspect.signature(getattr(AsyncPipeline, method)).parameters
    theirs = inspect.signature(getattr(runnable_trio.AsyncPipeline, method)).parameters
    assert list(ours) == list(theirs)
    assert [p.default for p in ours.values()] == [p.default for p in theirs.values()]
