"""compat/ on an asyncio host: the Trio engine as a guest of the running asyncio loop.

Plain sync tests that run their own asyncio loop (pytest-trio's trio_mode would claim async
ones). The loop is built with an explicit factory because importing trio-asyncio (which the
Trio-host tests do) makes ``asyncio.new_event_loop()`` build trio-asyncio loops for the rest
of the process; the reference's examples run with a plain ``asyncio.run`` in their own process
in ``test_compat_examples.py``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import inspect
import os
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, Protocol

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
    _guest,
    _received,
    replay,
)
from runnable._aio import GENERATOR_CAPACITY
from runnable.exceptions import CommandCallError

import runnable_trio
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


async def drain(pipeline: AsyncPipeline) -> None:
    """Run ``pipeline`` from asyncio to its end; it must succeed."""
    run = pipeline.execute_streaming()
    async for _ in run:
        pass
    assert run.run_log.status is Status.SUCCESS


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


@pytest.mark.parametrize(
    ("event_log", "per_event"),
    [
        (False, {"HostStream.__anext__"}),
        # The log's take on the asyncio side; its append (a no-op) and full on the Trio side.
        (
            True,
            {"HostStream.__anext__", "ReceivedLog.take", "ReceivedLog.append", "ReceivedLog.full"},
        ),
    ],
)
def test_a_buffered_event_calls_no_method_of_the_bridge(
    event_log: bool, per_event: set[str]
) -> None:
    # W8's hot path: __anext__ takes the event from the hand-off itself (no event log), or
    # through the log that records it, with no wrapper of the bridge's between (one call more
    # per event). Counted: the calls of the bridge's and the log's functions.
    events = 1000

    async def fast() -> AsyncIterator[dict[str, Any]]:
        for i in range(events):
            yield {"type": "chunk", "i": i}

    files = {_guest.__file__, _received.__file__}
    calls: collections.Counter[str] = collections.Counter()

    def profile(frame: Any, what: str, _: Any) -> None:
        if what == "call" and frame.f_code.co_filename in files:
            calls[frame.f_code.co_qualname] += 1

    async def main() -> int:
        received = 0
        pipeline = AsyncPythonTask("fast", fast).as_async_pipeline()
        sys.setprofile(profile)
        try:
            async for _ in pipeline.execute_streaming(event_log=event_log):
                received += 1
        finally:
            sys.setprofile(None)
        return received

    assert run_asyncio(main) == events
    assert {name for name, count in calls.items() if count >= events} == per_event


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


def test_a_wide_parallels_first_branches_start_on_the_loop_before_the_last_are_spawned() -> None:
    # Their asyncio tasks start when Trio yields to the host loop: were every branch spawned
    # before any ran, all would start at once and end at once, their completions queued up.
    width = 128  # a few spawning chunks (runnable_trio._fanout.SPAWN_CHUNK)
    seen: list[int] = []
    holder: list[HostRun] = []

    async def first() -> None:
        seen.append(len(holder[0].run_log.steps["fan"].branches))

    async def other() -> None:
        await asyncio.sleep(0)

    branches = {
        f"b{i}": AsyncPythonTask("t", first if i == 0 else other).as_async_pipeline()
        for i in range(width)
    }
    pipeline = AsyncPipeline([Parallel("fan", branches=branches)])

    async def main() -> None:
        run = pipeline.execute_streaming()
        assert isinstance(run, HostRun)
        holder.append(run)
        [_ async for _ in run]
        assert run.run_log.status is Status.SUCCESS

    run_asyncio(main)
    assert seen[0] < width  # branch records are made as branches are spawned


def test_an_async_defs_coroutine_is_its_asyncio_tasks_own() -> None:
    # No wrapper coroutine in the task: one object fewer held per waiting step.
    seen: list[Any] = []

    async def direct() -> None:
        task = asyncio.current_task()
        assert task is not None
        seen.append(task.get_coro().cr_code)  # type: ignore[union-attr]

    run_asyncio(lambda: drain(AsyncPythonTask("t", direct).as_async_pipeline()))
    assert seen == [direct.__code__]


@pytest.mark.skipif(sys.version_info < (3, 12), reason="inspect.markcoroutinefunction: 3.12")
def test_a_def_marked_as_a_coroutine_function_is_called_inside_its_asyncio_task() -> None:
    # Its call runs code of its own, which must run in asyncio as an async def's body does.
    seen: list[str] = []

    def marked() -> Coroutine[Any, Any, str]:
        seen.append(sniffio.current_async_library())
        return asyncio.sleep(0, "done")

    inspect.markcoroutinefunction(marked)
    task = AsyncPythonTask("t", marked, returns=["out"])

    async def main() -> Any:
        run = task.as_async_pipeline().execute_streaming()
        [_ async for _ in run]
        return run.run_log

    assert run_asyncio(main).parameters_out["out"] == "done"
    assert seen == ["asyncio"]


def alive_per_waiting_branch(run: Callable[[int, Callable[[], None]], None]) -> float:
    """Objects the cyclic GC tracks, per branch, while every branch of a Parallel waits.

    ``run(width, count)`` runs a Parallel of ``width`` branches, the last of which calls
    ``count()`` before releasing them all.
    """
    counts: dict[int, int] = {}
    for width in (100, 600):

        def count(width: int = width) -> None:
            gc.collect()
            counts[width] = len(gc.get_objects())

        run(width, count)
    return (counts[600] - counts[100]) / 500


class _Gate(Protocol):
    def set(self) -> None: ...
    async def wait(self) -> Any: ...


def _gated(width: int, count: Callable[[], None], release: _Gate) -> Callable[[], Any]:
    """A step function that waits at ``release`` until ``width`` calls of it wait there, the
    last calling ``count()`` first (every branch then waiting)."""
    arrived = 0

    async def wait() -> None:
        nonlocal arrived
        arrived += 1
        if arrived == width:
            count()
            release.set()
        await release.wait()

    return wait


def test_a_waiting_asyncio_step_holds_few_objects_beyond_a_trio_hosted_one() -> None:
    # A Parallel or Map holds one waiting step per branch, and the cyclic GC walks what each
    # holds. Beyond the same step on a Trio host, one waiting on the host loop holds: its
    # asyncio task, the task's context, weak reference and wake-up method, the Event's future
    # and its iterator, compat's two frames (_guard_call, await_on_loop), its _Waiting and the
    # two bound methods of that; less the 4 objects a Trio Event's wait holds: 7. It was 20
    # before run_alone served such a branch and with the wait's closures, a wrapper coroutine
    # and a copy of the context for the done callback.

    def on_asyncio(width: int, count: Callable[[], None]) -> None:
        task = AsyncPythonTask("t", _gated(width, count, asyncio.Event()))
        branches = {f"b{i}": task.as_async_pipeline() for i in range(width)}
        run_asyncio(lambda: drain(AsyncPipeline([Parallel("fan", branches=branches)])))

    def on_trio(width: int, count: Callable[[], None]) -> None:
        task = runnable_trio.AsyncPythonTask(name="t", function=_gated(width, count, trio.Event()))
        branches = {f"b{i}": task.as_async_pipeline() for i in range(width)}
        pipeline = runnable_trio.AsyncPipeline([runnable_trio.Parallel("fan", branches=branches)])

        async def main() -> None:
            async for _ in pipeline.execute_streaming():
                pass

        trio.run(main)

    # A fraction of an object per branch is growth of shared lists and dicts, not a branch's.
    assert alive_per_waiting_branch(on_asyncio) - alive_per_waiting_branch(on_trio) < 7.5


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


async def first_task_waiting() -> tuple[Any, asyncio.Event, asyncio.Task[Any]]:
    """A run whose one event waits for ``go``, and a first task parked in ``anext()`` on it
    (it started the run: nothing is produced yet)."""
    go = asyncio.Event()
    entered = asyncio.Event()

    async def gated() -> AsyncIterator[dict[str, Any]]:
        entered.set()
        await go.wait()
        yield {"type": "tick"}

    run = AsyncPythonTask("gated", gated).as_async_pipeline().execute_streaming()
    first = asyncio.create_task(anext(run))
    await wait_for(entered)
    return run, go, first


def test_two_tasks_waiting_on_one_stream_is_an_error() -> None:
    async def main() -> None:
        run, go, first = await first_task_waiting()
        with pytest.raises(RuntimeError, match="another task is already waiting"):
            await anext(run)
        go.set()
        assert await first == {"type": "tick"}
        await run.aclose()

    run_asyncio(main)


def test_a_second_task_cannot_take_the_event_a_waiting_task_was_woken_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The event reaches the hand-off and wakes the parked task; a second task that runs
    # before the woken one resumes (forced here: it runs inside the hand-off's put) must be
    # refused, not take the event: the woken task would then find nothing and end its
    # iteration as if the run were over.
    from runnable._handoff import HandOff

    stolen: list[BaseException | object] = []
    steal: list[Callable[[], None]] = []
    real_put = HandOff.put

    def put(self: HandOff[Any], item: Any) -> bool:
        must_wait = real_put(self, item)
        # The consumer's hand-off carries (seq, event); an asyncio generator's, its events.
        while steal and isinstance(item, tuple):
            steal.pop()()
        return must_wait

    monkeypatch.setattr(HandOff, "put", put)

    async def main() -> None:
        run, go, first = await first_task_waiting()

        def second_task_runs_now() -> None:
            attempt = run.__anext__()
            try:
                attempt.send(None)
            except StopIteration as taken:
                stolen.append(taken.value)
            except BaseException as exc:
                stolen.append(exc)
            finally:
                attempt.close()

        steal.append(second_task_runs_now)
        go.set()
        assert await first == {"type": "tick"}
        (refused,) = stolen
        assert isinstance(refused, RuntimeError), refused
        assert "another task is already waiting" in str(refused)
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


# --- the event log: exactly the events the asyncio consumer received ---------------------
#
# The run's Trio task runs ahead of the asyncio consumer by up to a hand-off's worth of events;
# those it holds when the consumer leaves were never received, so they are not in the log.


def ticks(count: int, *, fail: bool = False, interrupt: bool = False) -> AsyncPipeline:
    async def tick() -> AsyncIterator[dict[str, Any]]:
        for n in range(count):
            yield {"type": "tick", "n": n}
        if fail:
            raise ValueError("broke")

    def interrupted() -> None:  # in a worker thread: it reaches the consumer through the run
        raise KeyboardInterrupt

    steps = [AsyncPythonTask("tick", tick)]
    if interrupt:
        steps.append(AsyncPythonTask("interrupted", interrupted))
    return AsyncPipeline(steps)


def logged_lines(run_id: str) -> list[dict[str, Any]]:
    """The event and end lines of ``run_id``'s event log (not the writer lines)."""
    import json
    from pathlib import Path

    path = Path(f".run_log_store/{run_id}.events.jsonl")
    text = path.read_text() if path.exists() else ""
    # Complete lines only: read while the run writes, the last one may be cut short.
    lines = text.split("\n")[:-1]
    return [json.loads(line) for line in lines if '"writer"' not in line]


def end_lines(run_id: str) -> list[dict[str, Any]]:
    return [line["end"] for line in logged_lines(run_id) if "end" in line]


async def consume_logged(way: str, received: list[Any]) -> None:
    """Consume run r1 (logged) from asyncio, leaving it in ``way``; raises what ``way`` raises."""
    pipeline = {
        "failure": ticks(5, fail=True),
        "interrupt": ticks(3, interrupt=True),
    }.get(way, ticks(1000))
    if way in ("stream-break", "stream-exception"):
        async with pipeline.stream(run_id="r1", event_log=True) as events:
            async for event in events:
                received.append(event)
                if len(received) == 3:
                    if way == "stream-break":
                        break
                    raise KeyError("the consumer's own")
        return
    run = pipeline.execute_streaming(run_id="r1", event_log=True)
    if way in ("cancel", "timeout"):
        # Cancelled while awaiting in the loop body (a disconnect during a send), the iterator
        # closed by aclosing().

        async def consume() -> None:
            async with asyncio.timeout(None) as timeout, contextlib.aclosing(run):
                async for event in run:
                    received.append(event)
                    if len(received) == 3:
                        if way == "cancel":
                            asyncio.current_task().cancel()  # type: ignore[union-attr]
                        else:
                            timeout.reschedule(asyncio.get_running_loop().time())
                        await asyncio.sleep(PATIENCE)

        await asyncio.create_task(consume())
        return
    async for event in run:
        received.append(event)
        if len(received) == 3 and way not in ("end", "failure", "interrupt"):
            break
    if way == "aclose":
        await run.aclose()
    elif way == "dropped":
        del run  # no aclose(): HostStream.__del__ is all that ends the run
        gc.collect()
        await until(lambda: bool(end_lines("r1")))


LOGGED_WAYS_OUT = [
    # (way, the status in the end line, what reaches the consumer, events received)
    ("end", "SUCCESS", None, 1000),
    ("failure", "FAIL", ExecutionFailedError, 5),
    ("interrupt", "CANCELLED", KeyboardInterrupt, 3),
    ("aclose", "CANCELLED", None, 3),
    ("dropped", "CANCELLED", None, 3),
    ("cancel", "CANCELLED", asyncio.CancelledError, 3),
    ("timeout", "CANCELLED", TimeoutError, 3),
    ("stream-break", "CANCELLED", None, 3),
    ("stream-exception", "CANCELLED", KeyError, 3),
]


@pytest.mark.parametrize(("way", "status", "raised", "count"), LOGGED_WAYS_OUT)
def test_the_event_log_holds_exactly_the_received_events_then_one_end_line(
    way: str, status: str, raised: type[BaseException] | None, count: int
) -> None:
    received: list[Any] = []

    async def main() -> None:
        with pytest.raises(raised) if raised is not None else contextlib.nullcontext():
            await consume_logged(way, received)

    run_asyncio(main)
    assert len(received) == count
    logged = logged_lines("r1")
    assert end_lines("r1") == [end_lines("r1")[0]]  # exactly one
    assert end_lines("r1")[0]["status"] == status
    assert logged[-1] == {"end": end_lines("r1")[0]}  # the last line
    assert [line["event"] for line in logged[:-1]] == received  # all, and only, those
    assert [line["seq"] for line in logged[:-1]] == list(range(1, count + 1))


def test_the_events_received_are_written_while_the_consumer_waits_for_more() -> None:
    gate = asyncio.Event()

    async def three_then_wait() -> AsyncIterator[dict[str, Any]]:
        for n in range(3):
            yield {"type": "tick", "n": n}
        await gate.wait()
        yield {"type": "tick", "n": 3}

    async def main() -> list[dict[str, Any]]:
        pipeline = AsyncPythonTask("tick", three_then_wait).as_async_pipeline()
        run = pipeline.execute_streaming(run_id="r1", event_log=True)
        received = [await anext(run) for _ in range(3)]
        waiting = asyncio.create_task(anext(run))
        # Idle: what the consumer received is in the file (a replay following the run sees
        # it) while the run waits, as on a Trio host.
        await until(lambda: len(logged_lines("r1")) == 3)
        gate.set()
        received.append(await waiting)
        received.extend([event async for event in run])
        return received

    received = run_asyncio(main)
    assert [line["event"] for line in logged_lines("r1")[:-1]] == received
    assert end_lines("r1")[0]["status"] == "SUCCESS"


def test_a_retry_logs_exactly_the_received_events_numbered_on() -> None:
    import runnable

    pipeline = ticks(1000)

    async def leave_after_three(run: Any) -> list[dict[str, Any]]:
        received = [await anext(run) for _ in range(3)]
        await run.aclose()
        return received

    async def main() -> list[dict[str, Any]]:
        first = await leave_after_three(pipeline.execute_streaming(run_id="r1", event_log=True))
        retry = runnable.retry_streaming(pipeline, "r1", event_log=True)
        return first + await leave_after_three(retry)

    received = run_asyncio(main)
    logged = logged_lines("r1")
    assert [line.get("seq") for line in logged] == [1, 2, 3, None, 4, 5, 6, None]
    assert [line["event"] for line in logged if "event" in line] == received
    assert [line["end"]["status"] for line in logged if "end" in line] == ["CANCELLED"] * 2


def test_a_consumer_behind_when_the_run_ends_gets_every_event_logged_before_the_end() -> None:
    from runnable_trio import MemoryRunLogStore

    class Store(MemoryRunLogStore):
        ended = False

        async def finish(self, run_log: Any) -> None:
            await super().finish(run_log)
            # The run closes its channel right after this, in the same Trio step: once the
            # consumer sees this, the channel is closed.
            self.ended = True

    more = asyncio.Event()

    async def two_bursts() -> AsyncIterator[dict[str, Any]]:
        for n in range(100):
            if n == 50:
                await more.wait()
            yield {"type": "tick", "n": n}

    async def main() -> list[dict[str, Any]]:
        store = Store()
        pipeline = AsyncPythonTask("tick", two_bursts).as_async_pipeline()
        run = pipeline.execute_streaming(run_id="r1", event_log=True, store=store)
        received = [await anext(run)]
        # The first burst waits in the hand-off, its Trio side idle...
        await until(lambda: run._bridge is not None and len(run._bridge.events.items) == 49)
        more.set()
        # ... and the run ends with the second burst still in its channel: the end line must
        # come after every event the consumer goes on to receive.
        await until(lambda: store.ended)
        received.extend([event async for event in run])
        return received

    received = run_asyncio(main)
    assert len(received) == 100
    logged = logged_lines("r1")
    assert [line["event"] for line in logged[:-1]] == received
    assert logged[-1]["end"]["status"] == "SUCCESS"
