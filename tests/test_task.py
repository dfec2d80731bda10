"""AsyncPythonTask at run time: function kinds, returns, events, parameters, idle timeouts."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest
import trio
import trio.lowlevel
import trio.testing

from runnable_trio import (
    AsyncPipeline,
    AsyncPythonTask,
    EventError,
    ExecutionFailedError,
    ParameterError,
    ReturnsError,
    Status,
    StepTimeoutError,
    metric,
)
from tests.helpers import collect


async def run(pipeline: AsyncPipeline, **kwargs: Any) -> tuple[list[dict[str, Any]], Any]:
    async with pipeline.stream(**kwargs) as events:
        got = [event async for event in events]
    return got, events.run_log


async def failure(pipeline: AsyncPipeline, **kwargs: Any) -> ExecutionFailedError:
    with pytest.raises(ExecutionFailedError) as caught:
        await collect(pipeline, **kwargs)
    return caught.value


# --- function kinds ---------------------------------------------------------------------


async def test_coroutine_result_maps_onto_returns() -> None:
    async def fetch() -> dict[str, Any]:
        await trio.lowlevel.checkpoint()
        return {"status": "complete"}

    events, log = await run(AsyncPythonTask("fetch", fetch, returns=["result"]).as_async_pipeline())
    assert events == []
    assert log.status is Status.SUCCESS
    assert log.parameters_out == {"result": {"status": "complete"}}


async def test_tuple_result_maps_positionally() -> None:
    async def two() -> tuple[int, str]:
        return 1, "b"

    _, log = await run(AsyncPythonTask("two", two, returns=["a", "b"]).as_async_pipeline())
    assert log.parameters_out == {"a": 1, "b": "b"}


async def test_single_name_keeps_a_tuple_whole() -> None:
    async def pair() -> tuple[int, int]:
        return 1, 2

    _, log = await run(AsyncPythonTask("pair", pair, returns=["p"]).as_async_pipeline())
    assert log.parameters_out == {"p": (1, 2)}


async def test_count_mismatch_fails_clearly() -> None:
    async def three() -> tuple[int, int, int]:
        return 1, 2, 3

    error = await failure(AsyncPythonTask("three", three, returns=["a", "b"]).as_async_pipeline())
    assert isinstance(error.__cause__, ReturnsError)
    assert "returns names 2 values (a, b) but the function returned 3 values" in str(
        error.__cause__
    )
    assert error.step == "three"


async def test_sync_function_runs_in_a_worker_thread() -> None:
    loop_thread = threading.get_ident()
    seen: list[int] = []

    def blocking(x: int) -> int:
        seen.append(threading.get_ident())
        return x * 2

    _, log = await run(
        AsyncPythonTask("sync", blocking, returns=["y"]).as_async_pipeline(), parameters={"x": 4}
    )
    assert log.parameters_out["y"] == 8
    assert seen
    assert seen[0] != loop_thread


async def test_nested_and_callable_object_functions() -> None:
    factor = 3

    async def scale(x: int) -> int:  # a closure: no import by dotted path
        return x * factor

    class Adder:
        async def __call__(self, y: int) -> int:
            return y + 1

    pipeline = AsyncPipeline(
        [
            AsyncPythonTask("scale", scale, returns=["y"]),
            AsyncPythonTask("add", Adder(), returns=["z"]),
        ]
    )
    _, log = await run(pipeline, parameters={"x": 2})
    assert log.parameters_out["z"] == 7


async def test_later_steps_see_earlier_returns() -> None:
    async def process(text: str) -> str:
        return text.upper()

    async def analyze(processed_text: str) -> dict[str, Any]:
        return {"word_count": len(processed_text.split()), "processed": processed_text}

    pipeline = AsyncPipeline(
        [
            AsyncPythonTask("process", process, returns=["processed_text"]),
            AsyncPythonTask("analyze", analyze, returns=["analysis"]),
        ]
    )
    _, log = await run(pipeline, parameters={"text": "a b c"})
    assert log.parameters_out["analysis"] == {"word_count": 3, "processed": "A B C"}


# --- generators and the end event ---------------------------------------------------------


async def llm(prompt: str) -> AsyncIterator[dict[str, Any]]:
    yield {"type": "status", "status": "thinking"}
    for word in prompt.split():
        yield {"type": "chunk", "text": word}
    yield {"type": "done", "full_text": prompt, "words": len(prompt.split())}


async def test_events_pass_through_unchanged_and_in_order() -> None:
    sent: list[dict[str, Any]] = []

    async def gen() -> AsyncIterator[dict[str, Any]]:
        for i in range(5):
            event = {"type": "chunk", "i": i}
            sent.append(event)
            yield event

    events, _ = await run(AsyncPythonTask("g", gen).as_async_pipeline())
    assert events == sent
    assert all(a is b for a, b in zip(events, sent, strict=True))


async def test_end_event_maps_by_name_not_by_order() -> None:
    async def swapped() -> AsyncIterator[dict[str, Any]]:
        yield {"type": "done", "b": "B", "a": "A"}

    _, log = await run(AsyncPythonTask("s", swapped, returns=["a", "b"]).as_async_pipeline())
    assert log.parameters_out == {"a": "A", "b": "B"}


async def test_custom_stream_end_type() -> None:
    async def gen() -> AsyncIterator[dict[str, Any]]:
        yield {"type": "done", "result": "not this one"}
        yield {"type": "complete", "result": "this one"}

    task = AsyncPythonTask("c", gen, returns=["result"], stream_end_type="complete")
    _, log = await run(task.as_async_pipeline())
    assert log.parameters_out["result"] == "this one"


async def test_missing_end_event_fails_clearly() -> None:
    async def silent() -> AsyncIterator[dict[str, Any]]:
        yield {"type": "chunk"}

    error = await failure(AsyncPythonTask("s", silent, returns=["x"]).as_async_pipeline())
    assert isinstance(error.__cause__, ReturnsError)
    assert "ended without a 'done' event, so x could not be set" in str(error.__cause__)


async def test_missing_name_in_end_event_fails_clearly() -> None:
    error = await failure(
        AsyncPythonTask("llm", llm, returns=["summary"]).as_async_pipeline(),
        parameters={"prompt": "hi"},
    )
    assert isinstance(error.__cause__, ReturnsError)
    assert "the 'done' event has no 'summary' (its keys: 'full_text', 'words')" in str(
        error.__cause__
    )


async def test_generator_without_returns_needs_no_end_event() -> None:
    async def chatter() -> AsyncIterator[dict[str, Any]]:
        yield {"type": "chunk"}

    events, log = await run(AsyncPythonTask("c", chatter).as_async_pipeline())
    assert events == [{"type": "chunk"}]
    assert log.status is Status.SUCCESS


@pytest.mark.parametrize("bad", ["text", {"no_type": 1}, {"type": 3}, 42, None])
async def test_non_event_fails_the_step_naming_step_and_value(bad: Any) -> None:
    async def gen() -> AsyncIterator[Any]:
        yield {"type": "ok"}
        yield bad

    received: list[dict[str, Any]] = []
    with pytest.raises(ExecutionFailedError) as caught:
        async with AsyncPythonTask("bad", gen).as_async_pipeline().stream() as events:
            async for event in events:
                received.append(event)
    assert received == [{"type": "ok"}]  # nothing after the bad value
    cause = caught.value.__cause__
    assert isinstance(cause, EventError)
    assert "step 'bad'" in str(cause)
    assert repr(bad) in str(cause)


async def test_generator_is_closed_after_a_non_event() -> None:
    closed: list[str] = []

    async def gen() -> AsyncIterator[Any]:
        try:
            yield {"type": "ok"}
            yield "not an event"
            yield {"type": "never"}
        finally:
            closed.append("closed")

    with pytest.raises(ExecutionFailedError):
        await collect(AsyncPythonTask("bad", gen).as_async_pipeline())
    assert closed == ["closed"]  # suspended at the bad value, then closed by the step


async def test_generator_waiting_for_room_is_closed_when_the_consumer_leaves() -> None:
    closed: list[int] = []

    async def chatty() -> AsyncIterator[dict[str, Any]]:
        sent = 0
        try:
            while True:
                yield {"type": "chunk", "i": sent}
                sent += 1
        finally:
            closed.append(sent)

    async with AsyncPythonTask("c", chatty).as_async_pipeline().stream(buffer_size=1) as events:
        async for _ in events:
            await trio.testing.wait_all_tasks_blocked()  # the step waits for room now
            break
    assert len(closed) == 1  # closed at the yield whose event could not be handed over
    assert events.run_log.status is Status.CANCELLED
    assert events.run_log.steps["c"].status is Status.CANCELLED


async def test_metric_returns_are_recorded_on_the_attempt() -> None:
    async def score() -> float:
        return 0.9

    _, log = await run(
        AsyncPythonTask("s", score, returns=[metric("accuracy")]).as_async_pipeline()
    )
    assert log.steps["s"].attempts[0].metrics == {"accuracy": 0.9}
    assert log.parameters_out["accuracy"] == 0.9


# --- parameters --------------------------------------------------------------------------


@attrs.define
class Settings:
    depth: int
    name: str = "x"


@dataclasses.dataclass
class Point:
    x: float
    y: float


async def test_annotations_convert_values() -> None:
    seen: dict[str, Any] = {}

    async def use(
        n: int, f: float, flag: bool, items: list[int], table: dict[str, int], s: Settings, p: Point
    ) -> None:
        seen.update(n=n, f=f, flag=flag, items=items, table=table, s=s, p=p)

    params = {
        "n": "5",
        "f": 2,
        "flag": "false",
        "items": ["1", 2],
        "table": {"a": "1"},
        "s": {"depth": "3"},
        "p": {"x": 1, "y": "2.5"},
    }
    await run(AsyncPythonTask("use", use).as_async_pipeline(), parameters=params)
    assert seen == {
        "n": 5,
        "f": 2.0,
        "flag": False,
        "items": [1, 2],
        "table": {"a": 1},
        "s": Settings(3),
        "p": Point(1.0, 2.5),
    }


async def test_unconvertible_value_fails_naming_argument() -> None:
    async def use(n: int) -> None:
        pass

    error = await failure(AsyncPythonTask("use", use).as_async_pipeline(), parameters={"n": "many"})
    assert isinstance(error.__cause__, ParameterError)
    assert "argument 'n' expects int, cannot convert 'many'" in str(error.__cause__)


async def test_missing_argument_lists_available_parameters() -> None:
    async def needs(prompt: str) -> None:
        pass

    error = await failure(
        AsyncPythonTask("needs", needs).as_async_pipeline(), parameters={"b": 1, "a": 2}
    )
    assert isinstance(error.__cause__, ParameterError)
    assert str(error.__cause__) == (
        "step 'needs': no parameter for required argument 'prompt' (available parameters: a, b)"
    )


async def test_defaults_and_kwargs() -> None:
    seen: dict[str, Any] = {}

    async def use(a: int, b: int = 7, **rest: Any) -> None:
        seen.update(a=a, b=b, rest=rest)

    await run(AsyncPythonTask("use", use).as_async_pipeline(), parameters={"a": 1, "c": 3, "d": 4})
    assert seen == {"a": 1, "b": 7, "rest": {"c": 3, "d": 4}}


# --- idle timeout ------------------------------------------------------------------------


async def test_idle_timeout_fails_a_stalled_stream(autojump_clock: trio.testing.MockClock) -> None:
    async def stalls() -> AsyncIterator[dict[str, Any]]:
        yield {"type": "chunk"}
        await trio.sleep(100)
        yield {"type": "never"}

    task = AsyncPythonTask("llm", stalls, idle_timeout=5)
    start = trio.current_time()
    received: list[dict[str, Any]] = []
    with pytest.raises(ExecutionFailedError) as caught:
        async with task.as_async_pipeline().stream() as events:
            async for event in events:
                received.append(event)
    assert received == [{"type": "chunk"}]
    assert isinstance(caught.value.__cause__, StepTimeoutError)
    assert str(caught.value.__cause__) == "step 'llm': idle_timeout of 5 s exceeded"
    assert trio.current_time() - start == pytest.approx(5)


async def test_idle_timeout_spares_a_long_but_lively_stream(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def lively() -> AsyncIterator[dict[str, Any]]:
        for _ in range(100):
            await trio.sleep(4)
            yield {"type": "chunk"}

    task = AsyncPythonTask("llm", lively, idle_timeout=5)
    events, log = await run(task.as_async_pipeline())
    assert len(events) == 100
    assert log.status is Status.SUCCESS


async def test_idle_timeout_does_not_count_a_slow_consumer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def quick() -> AsyncIterator[dict[str, Any]]:
        for _ in range(10):
            yield {"type": "chunk"}

    task = AsyncPythonTask("llm", quick, idle_timeout=1)
    async with task.as_async_pipeline().stream(buffer_size=1) as events:
        async for _ in events:
            await trio.sleep(10)  # far longer than the idle timeout, on the consumer side
    assert events.run_log.status is Status.SUCCESS


async def test_plain_def_returning_a_coroutine_fails_clearly() -> None:
    async def inner() -> int:
        return 1

    def looks_sync() -> Any:
        return inner()

    # Trio's own check in to_thread.run_sync catches it, before the coroutine is lost.
    error = await failure(AsyncPythonTask("t", looks_sync, returns=["x"]).as_async_pipeline())
    assert isinstance(error.__cause__, TypeError)
    assert "appears to be asynchronous" in str(error.__cause__)


async def test_an_optional_positional_only_argument_keeps_its_default() -> None:
    # Parameters bind by name, so a positional-only argument is never bound: a required one
    # is refused when the task is built (tests/test_errors.py), an optional one keeps its
    # default even when a parameter of that name exists.
    async def scale(factor: int = 2, /, *, x: int) -> int:
        return factor * x

    pipeline = AsyncPythonTask("t", scale, returns=["y"]).as_async_pipeline()
    async with pipeline.stream(parameters={"x": 5, "factor": 10}) as events:
        async for _ in events:
            pass
    assert events.run_log.parameters_out["y"] == 10
