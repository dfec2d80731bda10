"""The policy every step shares: on_failure, terminate flags, timeouts, retries, records."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
import trio.testing

from runnable_trio import (
    AsyncPipeline,
    AsyncPythonTask,
    ExecutionFailedError,
    Lifecycle,
    Parallel,
    Retry,
    Status,
    StepTimeoutError,
    Stub,
    TerminatedWithFailure,
)
from runnable_trio._filestore import FileRunLogStore
from runnable_trio._rerun import retry_stream
from runnable_trio._runlog import Attempt, StepLog
from runnable_trio._store import MemoryRunLogStore
from runnable_trio.hosting import RunOptions, open_stream, prepare_run
from tests.helpers import collect
from tests.records import unfinished


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
    assert [(e["attempt"], e["delay"], e["error_message"]) for e in retrying] == [
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


# --- every record final ---------------------------------------------------------------------


async def ticks() -> AsyncIterator[dict[str, Any]]:
    for n in range(5):
        yield {"type": "tick", "n": n}
        await trio.lowlevel.checkpoint()


@pytest.mark.parametrize("received", [1, 2, 3])
async def test_a_step_cancelled_while_its_started_event_waits_for_room_is_cancelled(
    received: int,
) -> None:
    # Attribution on and a buffer of one: each branch's step.started waits for room, and the
    # consumer leaves while they wait.
    pipeline = AsyncPipeline(
        [
            Parallel(
                "p",
                {
                    "a": AsyncPythonTask("a", ticks).as_async_pipeline(),
                    "b": AsyncPythonTask("b", ticks).as_async_pipeline(),
                },
            )
        ]
    )
    async with pipeline.stream(attribution=True, buffer_size=1) as events:
        count = 0
        async for _ in events:
            count += 1
            await trio.testing.wait_all_tasks_blocked()
            if count == received:
                break
    assert events.run_log.status is Status.CANCELLED
    assert unfinished(events.run_log) == []
    assert FileRunLogStore().load(events.run_id).status is Status.CANCELLED
    assert unfinished(FileRunLogStore().load(events.run_id)) == []


async def test_branches_a_timeout_cuts_short_while_they_wait_to_start_are_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # A failed run (the Parallel's timeout) whose branches never got their step.started in.
    branches = {k: AsyncPythonTask(k, ticks).as_async_pipeline() for k in "abc"}
    pipeline = AsyncPipeline([Parallel("p", branches, timeout=1)])
    async with pipeline.stream(attribution=True, buffer_size=1) as events:
        with pytest.raises(ExecutionFailedError) as caught:
            async for _ in events:
                await trio.sleep(10)  # a slow consumer: the buffer stays full
    assert isinstance(caught.value.__cause__, StepTimeoutError)
    assert events.run_log.status is Status.FAIL
    assert unfinished(events.run_log) == []
    assert unfinished(FileRunLogStore().load(events.run_id)) == []


async def test_records_a_dead_writer_left_processing_are_closed_by_a_retry() -> None:
    calls = Calls()
    pipeline = AsyncPipeline([calls.task("a"), calls.task("b", fail=True), calls.task("c")])
    store = MemoryRunLogStore()
    prepared = prepare_run(pipeline, RunOptions.check(run_id="r1", parameters={}, store=store))
    with pytest.raises(ExecutionFailedError):
        async with open_stream(prepared) as events:
            async for _ in events:
                pass
    # What a process killed while running b (after a, before c) leaves behind.
    recorded = store.load("r1")
    recorded.steps["b"].status = recorded.steps["b"].attempts[0].status = Status.PROCESSING
    recorded.steps["c"] = StepLog("c", "task", "c", attempts=[Attempt(1)])
    with pytest.raises(ExecutionFailedError):
        async with retry_stream(pipeline, "r1", store=store) as events:
            async for _ in events:
                pass
    assert len(events.run_log.steps["b"].attempts) == 2
    assert unfinished(events.run_log) == []


async def test_branches_read_their_parents_values_and_copy_them_only_to_assign() -> None:
    from runnable_trio import Map
    from runnable_trio._scope import Scope

    seen: list[dict[str, Any]] = []

    async def look(item: int, **rest: Any) -> int:
        seen.append({"item": item, **rest})
        return item * 10

    async def after(item: int, doubled: int, base: int) -> int:
        return item + doubled + base

    async def one(item: int) -> int:
        return item + 1

    branch = AsyncPipeline(
        [
            # Branches of a Parallel inside a Map item see the item and the item's values.
            Parallel(
                "inner",
                branches={
                    "c": AsyncPythonTask("c", one, returns=["plus"]).as_async_pipeline(),
                    "d": AsyncPythonTask("d", look, returns=["doubled"]).as_async_pipeline(),
                },
            ),
            AsyncPythonTask("after", after, returns=["total"]),
        ]
    )
    pipeline = AsyncPipeline(
        [
            Map("each", iterate_on="items", iterate_as="item", branch=branch),
            Parallel(
                "fan",
                branches={
                    "a": AsyncPythonTask(
                        "a", lambda item, base: item + base, returns=["x"]
                    ).as_async_pipeline(),
                    "b": AsyncPythonTask("b", lambda base: base, returns=["y"]).as_async_pipeline(),
                },
            ),
        ]
    )
    log = await run(pipeline, parameters={"items": [1, 2], "base": 100, "item": 7, "doubled": 3})
    assert log.parameters_out["total"] == [111, 122]
    assert log.parameters_out["plus"] == [2, 3]
    assert log.parameters_out["x"] == 107
    assert log.parameters_out["y"] == 100
    # The Map item's binding hides the parent's parameter of that name, in every view.
    expected = [{"item": i, "items": [1, 2], "base": 100, "doubled": 3} for i in (1, 2)]
    assert sorted(seen, key=lambda d: d["item"]) == expected

    parent = Scope({"a": 1})
    shared, item = parent.branch(), parent.with_item("b", 2)
    assert dict(item.branch().values) == {"a": 1, "b": 2}
    assert dict(item.with_item("a", 0).values) == {"a": 0, "b": 2}
    assert shared.values == parent.values
    assert shared._values is parent._values  # read through, not copied
    assert dict(item.values) == {"a": 1, "b": 2}
    shared.restore({"a": 5})
    item.restore({"c": 3})
    assert parent.values == {"a": 1}
    assert shared.values == {"a": 5}
    assert item.values == {"a": 1, "b": 2, "c": 3}
    assert item.assigned == {"c": 3}


def test_the_hosting_scope_keeps_its_versioned_surface() -> None:
    # runnable_trio.hosting names Scope for hosts' steps: its constructor, child(**bound),
    # equality by value and the values a branch reads stay as they were.
    from runnable_trio.hosting import Scope as HostScope

    parent = HostScope({"a": 1}, {"a": 1})
    assert parent.assigned == {"a": 1}
    child = parent.child(item=2)
    assert dict(child.values) == {"a": 1, "item": 2}
    assert child.assigned == {}
    assert child.values is not parent.values  # the caller may write its own copy
    assert parent == HostScope({"a": 1}, {"a": 1}) != HostScope({"a": 1})
    assert parent.branch() == HostScope({"a": 1})
    assert parent.with_item("item", 2) == child
    with pytest.raises(TypeError):
        hash(parent)
