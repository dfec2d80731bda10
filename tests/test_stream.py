"""Streaming: both surfaces, every way of leaving, failures, backpressure, attribution."""

from __future__ import annotations

import gc
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import Any

import pytest
import trio
import trio.testing

from runnable_trio import (
    AsyncPipeline,
    AsyncPythonTask,
    ExecutionFailedError,
    Lifecycle,
    RunConfigurationError,
    Status,
)
from tests.helpers import collect


class Probe:
    """A generator task that records how it ended."""

    def __init__(self) -> None:
        self.started = trio.Event()
        self.finalized = trio.Event()
        self.produced = 0

    async def endless(self) -> AsyncIterator[dict[str, Any]]:
        self.started.set()
        try:
            while True:
                self.produced += 1
                yield {"type": "tick", "n": self.produced}
                await trio.sleep(1)
        finally:
            self.finalized.set()

    def pipeline(self) -> AsyncPipeline:
        return AsyncPythonTask("endless", self.endless).as_async_pipeline()


# --- leaving the stream ------------------------------------------------------------------


async def leave_by_break_stream(probe: Probe) -> Any:
    async with probe.pipeline().stream() as events:
        async for _ in events:
            break
    return events.run_log


async def leave_by_exception_stream(probe: Probe) -> Any:
    with pytest.raises(KeyError):
        async with probe.pipeline().stream() as events:
            async for _ in events:
                raise KeyError("consumer failed")
    return events.run_log


async def leave_by_cancel_stream(probe: Probe) -> Any:
    with trio.move_on_after(3.5):
        async with probe.pipeline().stream() as events:
            async for _ in events:
                pass
    return events.run_log


async def leave_by_fail_after_stream(probe: Probe) -> Any:
    with pytest.raises(trio.TooSlowError):
        with trio.fail_after(2.5):
            async with probe.pipeline().stream() as events:
                async for _ in events:
                    pass
    return events.run_log


async def leave_by_aclose(probe: Probe) -> Any:
    run = probe.pipeline().execute_streaming()
    assert (await run.__anext__())["type"] == "tick"
    await run.aclose()
    return run.run_log


async def leave_by_aclosing_break(probe: Probe) -> Any:
    async with aclosing(probe.pipeline().execute_streaming()) as run:
        async for _ in run:
            break
    return run.run_log


async def leave_by_exception_iterator(probe: Probe) -> Any:
    run = probe.pipeline().execute_streaming()
    with pytest.raises(KeyError):
        async with aclosing(run):
            async for _ in run:
                raise KeyError("consumer failed")
    return run.run_log


async def leave_by_cancel_iterator(probe: Probe) -> Any:
    run = probe.pipeline().execute_streaming()
    with trio.move_on_after(3.5):
        async for _ in run:
            pass
    return run.run_log


async def leave_by_fail_after_iterator(probe: Probe) -> Any:
    run = probe.pipeline().execute_streaming()
    with pytest.raises(trio.TooSlowError), trio.fail_after(2.5):
        async for _ in run:
            pass
    return run.run_log


@pytest.mark.parametrize(
    "leave",
    [
        leave_by_break_stream,
        leave_by_exception_stream,
        leave_by_cancel_stream,
        leave_by_fail_after_stream,
        leave_by_aclose,
        leave_by_aclosing_break,
        leave_by_exception_iterator,
        leave_by_cancel_iterator,
        leave_by_fail_after_iterator,
    ],
)
async def test_leaving_cancels_the_run_and_awaits_it(
    leave: Callable[[Probe], Awaitable[Any]], autojump_clock: trio.testing.MockClock
) -> None:
    probe = Probe()
    run_log = await leave(probe)
    # Nothing left to wait for: the task's finally already ran and the record is final.
    assert probe.finalized.is_set()
    assert run_log.status is Status.CANCELLED
    assert run_log.steps["endless"].status is Status.CANCELLED
    assert run_log.ended_at is not None
    produced = probe.produced
    await trio.sleep(10)
    assert probe.produced == produced  # nothing keeps running


async def test_break_out_of_bare_iterator_cancels_the_run(
    autojump_clock: trio.testing.MockClock,
) -> None:
    probe = Probe()
    run = probe.pipeline().execute_streaming()
    run_log = run.run_log
    async for _ in run:
        break
    del run
    gc.collect()
    with trio.fail_after(0.001):  # virtual time: cancelled at once, not after a tick
        await probe.finalized.wait()
    await trio.testing.wait_all_tasks_blocked()
    assert run_log.status is Status.CANCELLED


async def test_consumer_task_cancelled_while_waiting(
    autojump_clock: trio.testing.MockClock,
) -> None:
    probe = Probe()
    run = probe.pipeline().execute_streaming()

    async def consume() -> None:
        async for _ in run:
            pass

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consume)
        await probe.started.wait()
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    assert probe.finalized.is_set()
    assert run.run_log.status is Status.CANCELLED


async def test_iterator_after_aclose_is_exhausted() -> None:
    run = Probe().pipeline().execute_streaming()
    await run.aclose()
    with pytest.raises(StopAsyncIteration):
        await run.__anext__()


# --- failures ----------------------------------------------------------------------------


async def fails_after_two() -> AsyncIterator[dict[str, Any]]:
    yield {"type": "chunk", "n": 1}
    yield {"type": "chunk", "n": 2}
    raise ValueError("model crashed")


@pytest.mark.parametrize("surface", ["stream", "execute_streaming"])
async def test_failure_comes_after_every_earlier_event(surface: str) -> None:
    pipeline = AsyncPipeline([AsyncPythonTask("gen", fails_after_two)], name="p")
    received: list[dict[str, Any]] = []
    with pytest.raises(ExecutionFailedError) as caught:
        if surface == "stream":
            async with pipeline.stream(run_id="r-1") as events:
                async for event in events:
                    received.append(event)
        else:
            async for event in pipeline.execute_streaming(run_id="r-1"):
                received.append(event)
    assert received == [{"type": "chunk", "n": 1}, {"type": "chunk", "n": 2}]
    error = caught.value
    assert error.run_id == "r-1"
    assert error.step == "gen"
    assert isinstance(error.__cause__, ValueError)
    assert str(error.__cause__) == "model crashed"
    assert str(error) == "run 'r-1' failed at step 'gen': ValueError: model crashed"


async def test_failed_run_is_recorded_with_error_text() -> None:
    async with AsyncPythonTask("gen", fails_after_two).as_async_pipeline().stream() as events:
        with pytest.raises(ExecutionFailedError) as caught:
            async for _ in events:
                pass
    log = events.run_log
    assert log.status is Status.FAIL
    assert (log.step, log.error_type, log.error_message) == (
        "gen",
        "ValueError",
        "model crashed",
    )
    # The error the consumer gets names what failed with the run log's words.
    error = caught.value
    assert (error.step, error.error_type, error.error_message) == (
        "gen",
        "ValueError",
        "model crashed",
    )
    attempt = log.steps["gen"].attempts[0]
    assert (attempt.status, attempt.error_type, attempt.error_message) == (
        Status.FAIL,
        "ValueError",
        "model crashed",
    )
    assert attempt.ended_at is not None
    assert attempt.ended_at >= attempt.started_at


async def test_keyboard_interrupt_is_not_swallowed() -> None:
    async def interrupted() -> None:
        raise KeyboardInterrupt

    pipeline = AsyncPythonTask("ki", interrupted).as_async_pipeline()
    with pytest.raises(KeyboardInterrupt):
        async with pipeline.stream() as events:
            async for _ in events:
                pass
    assert events.run_log.status is Status.CANCELLED


async def test_a_cancellation_inside_the_run_is_not_swallowed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    probe = Probe()
    with trio.CancelScope() as outer:
        async with probe.pipeline().stream() as events:
            async for _ in events:
                outer.cancel()
                await trio.sleep(100)
                pytest.fail("the cancellation was swallowed")
    assert outer.cancelled_caught
    assert events.run_log.status is Status.CANCELLED


# --- real-time delivery and backpressure --------------------------------------------------


async def test_event_reaches_consumer_while_producer_waits(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def slow() -> AsyncIterator[dict[str, Any]]:
        yield {"type": "first"}
        await trio.sleep(1000)
        yield {"type": "second"}

    async with AsyncPythonTask("slow", slow).as_async_pipeline().stream() as events:
        first = await events.receive()
        assert first == {"type": "first"}
        assert trio.current_time() < 1  # not held back until the producer's next event


async def test_stalled_consumer_makes_the_producer_wait() -> None:
    produced = 0

    async def firehose() -> AsyncIterator[dict[str, Any]]:
        nonlocal produced
        for _ in range(1_000_000):
            produced += 1
            yield {"type": "chunk"}

    pipeline = AsyncPythonTask("firehose", firehose).as_async_pipeline()
    async with pipeline.stream(buffer_size=8) as events:
        await events.receive()
        await trio.testing.wait_all_tasks_blocked()
        # The producer is parked on a full buffer: the consumer's one, the buffer's eight,
        # and one event in the producer's hand.
        assert produced <= 1 + 8 + 1
        await events.receive()
        await trio.testing.wait_all_tasks_blocked()
        assert produced <= 2 + 8 + 1


async def test_receive_raises_end_of_channel_after_the_last_event() -> None:
    async def one() -> AsyncIterator[dict[str, Any]]:
        yield {"type": "only"}

    async with AsyncPythonTask("one", one).as_async_pipeline().stream() as events:
        assert await events.receive() == {"type": "only"}
        with pytest.raises(trio.EndOfChannel):
            await events.receive()
    assert events.run_log.status is Status.SUCCESS


# --- attribution and lifecycle ------------------------------------------------------------


async def test_attribution_and_lifecycle_events() -> None:
    async def first() -> AsyncIterator[dict[str, Any]]:
        yield {"type": "chunk", "step": "user's own 'step' key is kept"}
        yield {"type": "done", "x": 1}

    async def second(x: int) -> None:
        raise RuntimeError(f"bad x={x}")

    pipeline = AsyncPipeline(
        [AsyncPythonTask("first", first, returns=["x"]), AsyncPythonTask("second", second)],
        name="demo",
    )
    received: list[dict[str, Any]] = []
    with pytest.raises(ExecutionFailedError):
        async for event in pipeline.execute_streaming(run_id="attr-1", attribution=True):
            received.append(event)
    assert [(e["type"], e["_meta"]["step"]) for e in received] == [
        (Lifecycle.RUN_STARTED, ""),
        (Lifecycle.STEP_STARTED, "first"),
        ("chunk", "first"),
        ("done", "first"),
        (Lifecycle.STEP_COMPLETED, "first"),
        (Lifecycle.STEP_STARTED, "second"),
        (Lifecycle.STEP_FAILED, "second"),
        (Lifecycle.RUN_FAILED, ""),
    ]
    assert [e["_meta"]["seq"] for e in received] == list(range(1, len(received) + 1))
    assert {e["_meta"]["run_id"] for e in received} == {"attr-1"}
    timestamps = [e["_meta"]["ts"] for e in received]
    assert timestamps == sorted(timestamps)
    assert received[2]["step"] == "user's own 'step' key is kept"
    failed = received[6]
    assert (failed["error_type"], failed["error_message"]) == ("RuntimeError", "bad x=1")
    assert received[7]["step"] == "second"


async def test_attribution_copies_user_events() -> None:
    original = {"type": "chunk"}

    async def gen() -> AsyncIterator[dict[str, Any]]:
        yield original

    events = await collect(AsyncPythonTask("g", gen).as_async_pipeline(), attribution=True)
    assert original == {"type": "chunk"}
    assert events[2]["_meta"]["step"] == "g"


async def test_default_stream_has_no_framework_events() -> None:
    async def gen() -> AsyncIterator[dict[str, Any]]:
        yield {"type": "chunk"}

    assert await collect(AsyncPythonTask("g", gen).as_async_pipeline()) == [{"type": "chunk"}]


# --- run ids and arguments ---------------------------------------------------------------


async def noop() -> None:
    pass


def test_generated_run_ids_are_unique() -> None:
    pipeline = AsyncPythonTask("n", noop).as_async_pipeline()
    ids = {pipeline.execute_streaming().run_id for _ in range(1000)}
    assert len(ids) == 1000


async def test_two_runs_in_one_process_without_run_id() -> None:
    pipeline = AsyncPythonTask("n", noop).as_async_pipeline()
    first = pipeline.execute_streaming()
    second = pipeline.execute_streaming()
    for run in (first, second):
        async for _ in run:
            pass
        assert run.run_log.status is Status.SUCCESS
    assert first.run_id != second.run_id


@pytest.mark.parametrize("bad", ["a/b", "../x", "a..b", "-x", "x" * 129, "a b", "a\\b"])
def test_bad_run_ids_rejected_at_the_call(bad: str) -> None:
    pipeline = AsyncPythonTask("n", noop).as_async_pipeline()
    with pytest.raises(RunConfigurationError, match="run_id must be"):
        pipeline.execute_streaming(run_id=bad)
    with pytest.raises(RunConfigurationError, match="run_id must be"):
        pipeline.stream(run_id=bad)


def test_reference_style_run_id_is_accepted() -> None:
    run = (
        AsyncPythonTask("n", noop)
        .as_async_pipeline()
        .execute_streaming(run_id="req-2026-11-29T06:45:12.123456")
    )
    assert run.run_id == "req-2026-11-29T06:45:12.123456"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"buffer_size": 0}, "buffer_size must be an int >= 1"),
        ({"log_level": "LOUD"}, "log_level must be a logging level"),
        ({"parameters": [1, 2]}, "'parameters' must be a mapping"),
        ({"parameters": {1: "x"}}, "parameter names must be non-empty str"),
        ({"tag": 3}, "tag must be a str"),
    ],
)
def test_bad_arguments_rejected_at_the_call(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(RunConfigurationError, match=message):
        AsyncPythonTask("n", noop).as_async_pipeline().execute_streaming(**kwargs)


async def test_many_concurrent_runs_keep_their_own_parameters() -> None:
    async def echo(prompt: str) -> AsyncIterator[dict[str, Any]]:
        await trio.sleep(0.001 * (hash(prompt) % 5))
        yield {"type": "done", "answer": prompt}

    pipeline = AsyncPythonTask("echo", echo, returns=["answer"]).as_async_pipeline()
    answers: dict[str, str] = {}

    async def request(prompt: str) -> None:
        async for event in pipeline.execute_streaming(parameters={"prompt": prompt}):
            answers[prompt] = event["answer"]

    async with trio.open_nursery() as nursery:
        for i in range(50):
            nursery.start_soon(request, f"prompt-{i}")
    assert answers == {f"prompt-{i}": f"prompt-{i}" for i in range(50)}


def test_buffer_is_bounded_by_default() -> None:
    from runnable_trio._options import DEFAULT_BUFFER_SIZE

    assert 0 < DEFAULT_BUFFER_SIZE < math.inf


async def test_store_refusing_the_record_fails_the_run_without_touching_it() -> None:
    from runnable_trio import MemoryRunLogStore, RunLog
    from runnable_trio.hosting import RunOptions, prepare_run, start_streaming

    class Taken(MemoryRunLogStore):
        finished: list[RunLog] = []  # noqa: RUF012

        def exists(self, run_id: str) -> bool:
            return False  # the id is taken only after the check, by a concurrent run

        async def create(self, run_log: RunLog) -> None:
            raise RunConfigurationError(f"a run with id {run_log.run_id!r} already exists")

        async def finish(self, run_log: RunLog) -> None:
            self.finished.append(run_log)

    store = Taken()
    run = start_streaming(
        prepare_run(
            AsyncPythonTask("n", noop).as_async_pipeline(),
            RunOptions.check(
                configuration_file="",
                run_id="taken",
                tag="",
                parameters_file="",
                log_level="WARNING",
                parameters=None,
                attribution=False,
                buffer_size=None,
                store=store,
            ),
        )
    )
    with pytest.raises(ExecutionFailedError) as caught:
        async for _ in run:
            pass
    assert isinstance(caught.value.__cause__, RunConfigurationError)
    assert store.finished == []


async def test_sequence_numbers_without_attribution() -> None:
    async def three() -> AsyncIterator[dict[str, Any]]:
        for _ in range(3):
            yield {"type": "chunk"}

    run = AsyncPythonTask("t", three).as_async_pipeline().execute_streaming()
    assert run.last_seq == 0
    seen = [run.last_seq async for _ in run]
    assert seen == [1, 2, 3]


@pytest.mark.parametrize("surface", ["stream", "execute_streaming"])
async def test_a_record_that_cannot_be_finished_fails_the_run_not_trio(surface: str) -> None:
    from runnable_trio import MemoryRunLogStore, RunLog
    from runnable_trio.hosting import RunOptions, open_stream, prepare_run, start_streaming

    class DiskFull(MemoryRunLogStore):
        async def finish(self, run_log: RunLog) -> None:
            raise OSError(28, "No space left on device")

    run = prepare_run(
        AsyncPythonTask("n", noop).as_async_pipeline(),
        RunOptions.check(
            configuration_file="",
            run_id="",
            tag="",
            parameters_file="",
            log_level="WARNING",
            parameters=None,
            attribution=False,
            buffer_size=None,
            store=DiskFull(),
        ),
    )
    with pytest.raises(ExecutionFailedError) as caught:
        if surface == "stream":
            async with open_stream(run) as events:
                async for _ in events:
                    pass
        else:
            async for _ in start_streaming(run):
                pass
    assert isinstance(caught.value.__cause__, OSError)


async def test_the_consumers_own_exception_group_is_not_unwrapped() -> None:
    with pytest.raises(ExceptionGroup) as caught:
        async with AsyncPythonTask("n", noop).as_async_pipeline().stream():
            raise ExceptionGroup("mine", [ValueError("a")])
    assert caught.value.message == "mine"


async def test_sibling_steps_cancelled_by_a_failure_say_so(
    autojump_clock: trio.testing.MockClock,
) -> None:
    from runnable_trio import Parallel

    async def fails() -> None:
        await trio.sleep(1)
        raise ValueError("boom")

    async def waits() -> None:
        await trio.sleep(100)

    pipeline = AsyncPipeline(
        [
            Parallel(
                "p",
                {
                    "bad": AsyncPythonTask("bad", fails).as_async_pipeline(),
                    "slow": AsyncPythonTask("slow", waits).as_async_pipeline(),
                },
            )
        ]
    )
    received: list[dict[str, Any]] = []
    with pytest.raises(ExecutionFailedError):
        async for event in pipeline.execute_streaming(attribution=True):
            received.append(event)
    cancelled = [e["_meta"]["step"] for e in received if e["type"] == Lifecycle.STEP_CANCELLED]
    assert cancelled == ["p.slow.slow"]
