"""The library's own guarantees, tested through runnable_trio.testing (as its users would).

Each composite kind, nested, is left every way on both surfaces (the ``leave_every_way``
marker) with the toolkit's checks; failure scenarios that other modules build with hand-made
failing functions are built here with fault plans instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import trio
import trio.testing

from runnable_trio import (
    AsyncPipeline,
    AsyncPythonTask,
    Conditional,
    Lifecycle,
    Loop,
    Map,
    Parallel,
    Retry,
    Status,
    StepTimeoutError,
)
from runnable_trio.testing import (
    Delay,
    Hang,
    Raise,
    assert_events,
    assert_final,
    inject,
    leave,
    run_to_end,
)


async def tokens(n: int) -> AsyncIterator[dict[str, Any]]:
    for i in range(n):
        await trio.sleep(0.1)
        yield {"type": "token", "i": i}
    yield {"type": "done", "count": n}


async def bump(count: int) -> Any:
    await trio.sleep(0.1)
    return count + 1, count + 1 >= 3


def blocking(count: int) -> int:
    return count * 10


def gen_task(name: str = "gen", **kwargs: Any) -> AsyncPythonTask:
    return AsyncPythonTask(name, tokens, returns=["count"], **kwargs)


def parallel() -> AsyncPipeline:
    return AsyncPipeline(
        [
            Parallel(
                "fan",
                {
                    "a": gen_task().as_async_pipeline(),
                    "b": AsyncPipeline([AsyncPythonTask("g", tokens)]),
                },
            )
        ]
    )


def map_of_generators() -> AsyncPipeline:
    return AsyncPipeline([Map("each", "items", "n", gen_task(timeout=5).as_async_pipeline())])


def loop() -> AsyncPipeline:
    branch = AsyncPipeline([gen_task(), AsyncPythonTask("bump", bump, returns=["count", "enough"])])
    return AsyncPipeline([Loop("again", branch, 3, "enough", "i")])


def conditional() -> AsyncPipeline:
    return AsyncPipeline(
        [
            Conditional(
                "pick",
                "mode",
                {
                    "stream": gen_task().as_async_pipeline(),
                    "thread": AsyncPythonTask("t", blocking, returns=["count"]).as_async_pipeline(),
                },
            )
        ]
    )


def recovering() -> AsyncPipeline:
    recovery = AsyncPipeline([Map("each", "items", "n", gen_task().as_async_pipeline())])
    return AsyncPipeline(
        [
            AsyncPythonTask(
                "fails",
                tokens,
                returns=["missing"],  # never in the end event: the step fails
                on_failure=recovery,
            )
        ]
    )


def deep() -> AsyncPipeline:
    return AsyncPipeline(
        [
            gen_task("first"),
            Parallel(
                "outer",
                {
                    "m": map_of_generators(),
                    "l": loop(),
                    "c": conditional(),
                },
            ),
        ]
    )


PIPELINES: dict[str, Callable[[], AsyncPipeline]] = {
    "parallel": parallel,
    "map": map_of_generators,
    "loop": loop,
    "conditional": conditional,
    "on_failure": recovering,
    "deep": deep,
}
PARAMETERS = {"n": 3, "count": 0, "items": [1, 2, 3], "mode": "stream"}


@pytest.mark.leave_every_way
@pytest.mark.parametrize("name", list(PIPELINES))
async def test_every_composite_leaves_nothing_behind(
    name: str, leave: Any, runnable_config: str, runnable_clock: trio.testing.MockClock
) -> None:
    await leave.run(PIPELINES[name](), parameters=PARAMETERS, configuration_file=runnable_config)


@pytest.mark.leave_every_way(at=[0, 2])
async def test_a_thread_step_leaves_nothing_behind(
    leave: Any, runnable_config: str, runnable_clock: trio.testing.MockClock
) -> None:
    pipeline = AsyncPipeline([gen_task(), AsyncPythonTask("t", blocking, returns=["x"])])
    await leave.run(pipeline, parameters=PARAMETERS, configuration_file=runnable_config)


@pytest.mark.leave_every_way(at=[0, 1, 3])
async def test_attribution_and_a_full_buffer_leave_every_record_final(
    leave: Any, runnable_clock: trio.testing.MockClock
) -> None:
    # Issue 9, point 1: a step.started waiting for room when the run is cancelled.
    await leave.run(parallel(), parameters=PARAMETERS, attribution=True, buffer_size=1)


async def test_a_failing_branch_cancels_its_siblings_and_says_so(
    runnable_clock: trio.testing.MockClock,
) -> None:
    with inject({"fan.b.g": Raise(ValueError("b broke"), after_event=1)}):
        events, run_log, error = await run_to_end(
            parallel(), parameters=PARAMETERS, attribution=True
        )
    assert error is not None
    assert str(error.__cause__) == "b broke"
    branches = run_log.steps["fan"].branches
    assert branches["b"].status is Status.FAIL
    assert branches["a"].status is Status.CANCELLED
    assert_final(run_log)
    assert_events(
        events,
        [
            {"type": Lifecycle.STEP_FAILED, "error": "b broke"},  # fan.b.g
            {"type": Lifecycle.STEP_CANCELLED},  # fan.a.gen
            {"type": Lifecycle.STEP_FAILED, "error": "b broke"},  # fan
        ],
        types=[Lifecycle.STEP_FAILED, Lifecycle.STEP_CANCELLED],
        subset=True,
    )


async def test_retries_of_one_map_item_are_recorded_per_attempt(
    runnable_clock: trio.testing.MockClock,
) -> None:
    branch = gen_task(retry=Retry(attempts=3, backoff=0.5)).as_async_pipeline()
    pipeline = AsyncPipeline([Map("each", "items", "n", branch)])
    faults = {"each.1.gen": Raise(ConnectionError("reset"), attempt={1, 2}, after_event=2)}
    result = await run_to_end(pipeline, parameters=PARAMETERS, faults=faults, attribution=True)
    assert result.error is None
    attempts = result.run_log.steps["each"].branches["1"].steps["gen"].attempts
    assert [a.status for a in attempts] == [Status.FAIL, Status.FAIL, Status.SUCCESS]
    retrying = [e for e in result.events if e["type"] == Lifecycle.STEP_RETRYING]
    assert [(e["attempt"], e["delay"]) for e in retrying] == [(1, 0.5), (2, 1.0)]


async def test_a_map_item_timing_out_fails_the_map_and_cancels_the_others(
    runnable_clock: trio.testing.MockClock,
) -> None:
    start = trio.current_time()
    result = await run_to_end(
        map_of_generators(), parameters=PARAMETERS, faults={"each.2.gen": Hang(after_event=1)}
    )
    assert isinstance(result.cause, StepTimeoutError)
    assert trio.current_time() - start == pytest.approx(5)
    assert result.run_log.steps["each"].branches["2"].status is Status.FAIL
    assert_final(result.run_log)


async def test_a_slow_consumer_does_not_count_against_idle_timeout(
    runnable_clock: trio.testing.MockClock,
) -> None:
    pipeline = gen_task(idle_timeout=1).as_async_pipeline()

    async def slow(event: dict[str, Any]) -> None:
        await trio.sleep(10)  # the consumer dawdles; the generator is not silent

    left = await leave(pipeline, "end", parameters=PARAMETERS, on_event=slow)
    assert left.run_log.status is Status.SUCCESS
    # ... while a generator silent for longer than its idle_timeout fails.
    result = await run_to_end(
        pipeline, parameters=PARAMETERS, faults={"gen": Delay(2, after_event=1)}
    )
    assert isinstance(result.cause, StepTimeoutError)
