"""The policy every step shares: on_failure, terminate flags, timeouts, retries, records."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import trio
import trio.testing

from runnable_trio import (
    AsyncPipeline,
    AsyncPythonTask,
    ExecutionFailedError,
    Lifecycle,
    Retry,
    Status,
    StepTimeoutError,
    Stub,
    TerminatedWithFailure,
)
from tests.helpers import collect


class Calls:
    def __init__(self) -> None:
        self.names: list[str] = []

    def task(self, name: str, *, fail: bool = False, **kwargs: Any) -> AsyncPythonTask:
        async def work() -> str:
            self.names.append(name)
            if fail:
                raise ValueError(f"{name} broke")
            return name

        return AsyncPythonTask(name, work, **kwargs)


async def run(pipeline: AsyncPipeline, **kwargs: Any) -> Any:
    async with pipeline.stream(**kwargs) as events:
        async for _ in events:
            pass
    return events.run_log


async def test_steps_run_in_order_and_are_recorded() -> None:
    calls = Calls()
    log = await run(AsyncPipeline([calls.task("a"), calls.task("b"), Stub("c")]))
    assert calls.names == ["a", "b"]
    assert list(log.steps) == ["a", "b", "c"]
    assert all(step.status is Status.SUCCESS for step in log.steps.values())
    assert log.steps["c"].kind == "stub"


async def test_on_failure_runs_recovery_and_skips_the_rest() -> None:
    calls = Calls()
    recovery = AsyncPipeline([calls.task("notify", returns=["notified"])])
    pipeline = AsyncPipeline(
        [calls.task("a"), calls.task("b", fail=True, on_failure=recovery), calls.task("c")]
    )
    log = await run(pipeline)
    assert calls.names == ["a", "b", "notify"]
    assert log.status is Status.SUCCESS
    assert log.steps["b"].status is Status.FAIL
    assert log.steps["b"].attempts[0].error_message == "b broke"
    branch = log.steps["b"].branches["%on_failure"]
    assert branch.status is Status.SUCCESS
    assert branch.steps["notify"].path == "b.%on_failure.notify"
    assert "c" not in log.steps
    assert log.parameters_out["notified"] == "notify"


async def test_failing_recovery_fails_the_run() -> None:
    calls = Calls()
    recovery = AsyncPipeline([calls.task("notify", fail=True)])
    pipeline = AsyncPipeline([calls.task("b", fail=True, on_failure=recovery)])
    with pytest.raises(ExecutionFailedError) as caught:
        await run(pipeline)
    assert str(caught.value.__cause__) == "notify broke"
    assert caught.value.step == "b.%on_failure.notify"


async def test_terminate_with_success_on_a_middle_step() -> None:
    calls = Calls()
    log = await run(AsyncPipeline([calls.task("a", terminate_with_success=True), calls.task("b")]))
    assert calls.names == ["a"]
    assert log.status is Status.SUCCESS


async def test_terminate_with_failure_on_a_middle_step() -> None:
    calls = Calls()
    with pytest.raises(ExecutionFailedError) as caught:
        await run(AsyncPipeline([calls.task("a", terminate_with_failure=True), calls.task("b")]))
    assert calls.names == ["a"]
    assert isinstance(caught.value.__cause__, TerminatedWithFailure)
    assert caught.value.step == "a"


async def test_terminate_with_failure_after_recovery() -> None:
    calls = Calls()
    recovery = AsyncPipeline([calls.task("cleanup", terminate_with_failure=True)])
    with pytest.raises(ExecutionFailedError):
        await run(AsyncPipeline([calls.task("a", fail=True, on_failure=recovery)]))
    assert calls.names == ["a", "cleanup"]


async def test_timeout_fails_the_step_naming_it_and_the_limit(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def hangs() -> None:
        await trio.sleep_forever()

    pipeline = AsyncPipeline([AsyncPythonTask("slow", hangs, timeout=30)])
    with pytest.raises(ExecutionFailedError) as caught:
        await run(pipeline)
    assert isinstance(caught.value.__cause__, StepTimeoutError)
    assert str(caught.value.__cause__) == "step 'slow': timeout of 30 s exceeded"
    assert trio.current_time() == pytest.approx(30)


async def test_timeout_does_not_touch_a_quick_step(autojump_clock: trio.testing.MockClock) -> None:
    async def quick() -> int:
        await trio.sleep(1)
        return 1

    log = await run(AsyncPipeline([AsyncPythonTask("q", quick, timeout=30, returns=["x"])]))
    assert log.parameters_out["x"] == 1


async def test_retry_with_exponential_backoff_and_cap(
    autojump_clock: trio.testing.MockClock,
) -> None:
    started: list[float] = []

    async def flaky() -> str:
        started.append(trio.current_time())
        if len(started) < 5:
            raise ConnectionError(f"attempt {len(started)} failed")
        return "ok"

    task = AsyncPythonTask(
        "flaky", flaky, returns=["x"], retry=Retry(attempts=5, backoff=1, factor=2, max_backoff=5)
    )
    events = await collect(task.as_async_pipeline(), attribution=True)
    assert [b - a for a, b in itertools.pairwise(started)] == [1, 2, 4, 5]
    retrying = [e for e in events if e["type"] == Lifecycle.STEP_RETRYING]
    assert [(e["attempt"], e["delay"], e["error"]) for e in retrying] == [
        (1, 1, "attempt 1 failed"),
        (2, 2, "attempt 2 failed"),
        (3, 4, "attempt 3 failed"),
        (4, 5, "attempt 4 failed"),
    ]


async def test_each_attempt_recorded_and_events_of_failed_attempts_kept(
    autojump_clock: trio.testing.MockClock,
) -> None:
    attempts = 0

    async def flaky() -> Any:
        nonlocal attempts
        attempts += 1
        yield {"type": "chunk", "attempt": attempts}
        if attempts < 3:
            raise ConnectionError("dropped")
        yield {"type": "done", "x": attempts}

    task = AsyncPythonTask("flaky", flaky, returns=["x"], retry=Retry(attempts=3, backoff=0.5))
    async with task.as_async_pipeline().stream() as events:
        received = [event async for event in events]
    assert received == [
        {"type": "chunk", "attempt": 1},
        {"type": "chunk", "attempt": 2},
        {"type": "chunk", "attempt": 3},
        {"type": "done", "x": 3},
    ]
    log = events.run_log.steps["flaky"]
    assert [(a.number, a.status, a.error_type) for a in log.attempts] == [
        (1, Status.FAIL, "ConnectionError"),
        (2, Status.FAIL, "ConnectionError"),
        (3, Status.SUCCESS, None),
    ]
    assert log.attempts[1].started_at >= log.attempts[0].ended_at


async def test_retries_exhausted_fail_with_the_last_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    calls = Calls()
    task = calls.task("b", fail=True, retry=Retry(attempts=3))
    with pytest.raises(ExecutionFailedError) as caught:
        await run(task.as_async_pipeline())
    assert calls.names == ["b", "b", "b"]
    assert str(caught.value.__cause__) == "b broke"


async def test_timeout_applies_per_attempt_so_a_hung_attempt_is_retried(
    autojump_clock: trio.testing.MockClock,
) -> None:
    attempts = 0

    async def sometimes_hangs() -> int:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            await trio.sleep_forever()
        return attempts

    task = AsyncPythonTask(
        "t", sometimes_hangs, returns=["x"], timeout=10, retry=Retry(attempts=2, backoff=1)
    )
    log = await run(task.as_async_pipeline())
    assert log.parameters_out["x"] == 2
    assert log.steps["t"].attempts[0].error_type == "StepTimeoutError"
    assert trio.current_time() == pytest.approx(11)


async def test_cancellation_is_never_retried(autojump_clock: trio.testing.MockClock) -> None:
    attempts = 0

    async def slow() -> None:
        nonlocal attempts
        attempts += 1
        await trio.sleep_forever()

    task = AsyncPythonTask("t", slow, retry=Retry(attempts=5))
    with trio.move_on_after(5):
        await run(task.as_async_pipeline())
    assert attempts == 1


def test_retry_policy_validation_and_delays() -> None:
    assert Retry(attempts=4, backoff=0.5, factor=3).delay(3) == 4.5
    assert Retry(backoff=2, factor=10, max_backoff=7).delay(2) == 7
    from runnable_trio import PipelineDefinitionError

    with pytest.raises(PipelineDefinitionError, match="'attempts' must be an int >= 1"):
        Retry(attempts=0)
    with pytest.raises(PipelineDefinitionError, match="'backoff' must be a finite number >= 0"):
        Retry(backoff=-1)
