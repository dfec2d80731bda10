"""Edges of the stream: interrupts raised by tasks, the returns of an end event, misuse."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import trio
import trio.testing

from runnable_trio import AsyncPipeline, AsyncPythonTask, Parallel, Status
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
