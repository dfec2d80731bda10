"""Edges of the stream: interrupts raised by tasks, the returns of an end event, misuse."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import trio
import trio.testing

from runnable_trio import AsyncPipeline, AsyncPythonTask, Parallel, RunConfigurationError, Status
from runnable_trio._filestore import FileRunLogStore
from tests.records import unfinished

# --- KeyboardInterrupt and SystemExit raised by a task --------------------------------------


async def coroutine_raising(exc: Any) -> None:
    await trio.lowlevel.checkpoint()
    raise exc


async def generator_raising(exc: Any) -> AsyncIterator[dict[str, Any]]:
    yield {"type": "tick"}
    raise exc


def sync_raising(exc: Any) -> None:
    raise exc


def interrupting(kind: str) -> AsyncPipeline:
    function: Callable[..., Any] = {
        "coroutine": coroutine_raising,
        "generator": generator_raising,
        "sync": sync_raising,
    }[kind]
    slow = AsyncPythonTask("slow", trio.sleep_forever).as_async_pipeline()
    inner = AsyncPythonTask("raiser", function).as_async_pipeline()
    return AsyncPipeline([Parallel("p", {"slow": slow, "raiser": inner})])


@pytest.mark.parametrize("kind", ["coroutine", "generator", "sync"])
@pytest.mark.parametrize("exc", [KeyboardInterrupt, SystemExit])
@pytest.mark.parametrize("surface", ["execute_streaming", "stream"])
async def test_an_interrupt_raised_by_a_task_reaches_the_consumer_as_itself(
    kind: str, exc: type[BaseException], surface: str
) -> None:
    pipeline = interrupting(kind)
    parameters = {"exc": exc}
    received: list[dict[str, Any]] = []
    # Under execute_streaming() the run is a Trio system task: an interrupt escaping it
    # would end this whole test's Trio run with TrioInternalError.
    with pytest.raises(exc):
        if surface == "stream":
            async with pipeline.stream(parameters=parameters) as events:
                async for event in events:
                    received.append(event)
        else:
            events = pipeline.execute_streaming(parameters=parameters)  # type: ignore[assignment]
            async for event in events:
                received.append(event)
    assert received == ([{"type": "tick"}] if kind == "generator" else [])
    assert events.run_log.status is Status.CANCELLED
    assert unfinished(events.run_log) == []


async def test_an_interrupt_reaches_a_consumer_of_execute_streaming_only_once() -> None:
    run = interrupting("coroutine").execute_streaming(parameters={"exc": KeyboardInterrupt})
    with pytest.raises(KeyboardInterrupt):
        async for _ in run:
            pass
    with pytest.raises(StopAsyncIteration):
        await anext(run)


# --- the end event's returns ----------------------------------------------------------------


@pytest.mark.parametrize("idle_timeout", [None, 10.0])
async def test_a_consumer_editing_the_end_event_does_not_change_the_returns(
    idle_timeout: float | None,
) -> None:
    edited = trio.Event()

    async def answer() -> AsyncIterator[dict[str, Any]]:
        yield {"type": "done", "text": "kept", "n": 1}
        await edited.wait()  # the generator ends (and its returns are read) after the edit

    async def show(text: str, n: int) -> str:
        return f"{text} {n}"

    pipeline = AsyncPipeline(
        [
            AsyncPythonTask("answer", answer, returns=["text", "n"], idle_timeout=idle_timeout),
            AsyncPythonTask("show", show, returns=["shown"]),
        ]
    )
    async with pipeline.stream() as events:
        async for event in events:
            event["text"] = "edited"
            del event["n"]
            edited.set()
    assert events.run_log.status is Status.SUCCESS
    assert events.run_log.parameters_out["shown"] == "kept 1"


# --- misuse says what to do -----------------------------------------------------------------


async def one_event() -> AsyncIterator[dict[str, Any]]:
    yield {"type": "tick"}


ONE_EVENT = AsyncPythonTask("one", one_event).as_async_pipeline()


def test_execute_streaming_from_asyncio_run_says_to_import_runnable() -> None:
    import asyncio

    async def main() -> None:
        async for _ in ONE_EVENT.execute_streaming():
            pass

    with pytest.raises(RunConfigurationError, match=r"from asyncio code.*import runnable"):
        asyncio.run(main())


def test_stream_from_asyncio_run_says_to_import_runnable() -> None:
    import asyncio

    async def main() -> None:
        async with ONE_EVENT.stream() as events:
            async for _ in events:
                pass

    with pytest.raises(RunConfigurationError, match=r"from asyncio code.*import runnable"):
        asyncio.run(main())


def test_a_run_made_in_sync_code_and_iterated_under_asyncio_says_so_at_its_start() -> None:
    import asyncio

    run = ONE_EVENT.execute_streaming()  # no event loop yet: accepted

    async def main() -> None:
        async for _ in run:
            pass

    with pytest.raises(RunConfigurationError, match=r"import runnable"):
        asyncio.run(main())
    assert run.run_log.status is Status.PROCESSING  # never started: nothing was recorded
    assert not FileRunLogStore().exists(run.run_id)


@pytest.mark.parametrize("surface", ["execute_streaming", "stream"])
async def test_the_asyncio_side_of_trio_asyncio_says_to_import_runnable(surface: str) -> None:
    import trio_asyncio

    async def from_asyncio() -> None:
        if surface == "stream":
            ONE_EVENT.stream()
        else:
            ONE_EVENT.execute_streaming()

    async with trio_asyncio.open_loop():
        with pytest.raises(RunConfigurationError, match=r"from asyncio code.*import runnable"):
            await trio_asyncio.aio_as_trio(from_asyncio)()
    # ...while the Trio side of the same run goes on working.
    assert [e async for e in ONE_EVENT.execute_streaming()] == [{"type": "tick"}]


async def test_a_second_consumer_of_one_run_is_an_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def ticks() -> AsyncIterator[dict[str, Any]]:
        for n in range(3):
            yield {"type": "tick", "n": n}
            await trio.sleep(1)

    run = AsyncPythonTask("ticks", ticks).as_async_pipeline().execute_streaming()
    received: list[int] = []

    async def first() -> None:
        async for event in run:
            received.append(event["n"])

    async with trio.open_nursery() as nursery:
        nursery.start_soon(first)
        await trio.testing.wait_all_tasks_blocked()  # the first consumer waits for an event
        with pytest.raises(trio.BusyResourceError, match="another task is already iterating"):
            await anext(run)
    assert received == [0, 1, 2]  # the first consumer lost nothing; the run went on
    assert run.run_log.status is Status.SUCCESS


async def test_a_second_consumer_of_a_stream_is_an_error() -> None:
    pipeline = AsyncPythonTask("s", trio.sleep_forever).as_async_pipeline()
    async with pipeline.stream() as events, trio.open_nursery() as nursery:
        nursery.start_soon(anext, events)
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(trio.BusyResourceError):
            await anext(events)
        nursery.cancel_scope.cancel()


def stubborn_pipeline(cleanup_seconds: float) -> AsyncPipeline:
    async def stubborn() -> None:
        try:
            await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):  # a cleanup that ignores the cancellation
                await trio.sleep(cleanup_seconds)

    async def quick() -> AsyncIterator[dict[str, Any]]:
        yield {"type": "tick"}
        await trio.sleep_forever()

    branches = {
        "quick": AsyncPythonTask("quick", quick).as_async_pipeline(),
        "slow": AsyncPythonTask("stubborn", stubborn).as_async_pipeline(),
    }
    return AsyncPipeline([Parallel("p", branches)])


async def leave(surface: str, pipeline: AsyncPipeline, **kwargs: Any) -> None:
    if surface == "stream":
        async with pipeline.stream(**kwargs) as events:
            async for _ in events:
                break
    else:
        run = pipeline.execute_streaming(**kwargs)
        async for _ in run:
            break
        await run.aclose()


@pytest.mark.parametrize("surface", ["execute_streaming", "stream"])
async def test_a_run_that_does_not_end_after_its_cancellation_is_named_in_a_warning(
    surface: str, autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    started = trio.current_time()
    await leave(surface, stubborn_pipeline(cleanup_seconds=60))
    assert trio.current_time() - started == pytest.approx(60)  # the run was waited for
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert "'p.slow.stubborn'" in warnings[0].getMessage()
    assert "'p.quick.quick'" not in warnings[0].getMessage()  # that one ended at once
    assert "10 s ago" in warnings[0].getMessage()


async def test_the_cancellation_warning_threshold_is_configurable(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture, tmp_path: Any
) -> None:
    (tmp_path / "patient.yaml").write_text("cancel_warning: 100\n")
    await leave("stream", stubborn_pipeline(cleanup_seconds=60), configuration_file="patient.yaml")
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
    (tmp_path / "hasty.yaml").write_text("cancel_warning: 0.5\n")
    await leave("stream", stubborn_pipeline(cleanup_seconds=1), configuration_file="hasty.yaml")
    assert "0.5 s ago" in caplog.records[-1].getMessage()


async def test_a_dropped_iterator_whose_run_does_not_end_is_named_in_a_warning(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    import gc

    run = stubborn_pipeline(cleanup_seconds=60).execute_streaming()
    async for _ in run:
        break
    del run
    gc.collect()
    await trio.sleep(30)
    assert "'p.slow.stubborn'" in caplog.records[-1].getMessage()
    await trio.sleep(60)


async def test_an_interrupt_raised_while_the_consumer_leaves_reaches_it_from_aclose() -> None:
    in_thread, release = trio.Event(), threading.Event()

    def interrupted_in_its_thread() -> None:
        trio.from_thread.run_sync(in_thread.set)
        release.wait()  # still running when the run is cancelled
        raise SystemExit(3)

    branches = {
        "tick": AsyncPythonTask("tick", one_event).as_async_pipeline(),
        "thread": AsyncPythonTask("thread", interrupted_in_its_thread).as_async_pipeline(),
    }
    run = AsyncPipeline([Parallel("p", branches)]).execute_streaming()
    async for _ in run:
        break
    await in_thread.wait()

    async def let_the_thread_go() -> None:
        await trio.testing.wait_all_tasks_blocked()  # aclose() waits for the thread now
        release.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(let_the_thread_go)
        with pytest.raises(SystemExit):
            await run.aclose()
    assert run.run_log.status is Status.CANCELLED
