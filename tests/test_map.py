"""Map: one branch per item, concurrently, results in input order, reduced."""

from __future__ import annotations

import random
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
import trio.testing

from runnable_trio import (
    AsyncPipeline,
    AsyncPythonTask,
    Conditional,
    ExecutionFailedError,
    Map,
    ParameterError,
    PipelineDefinitionError,
    Status,
    StepTimeoutError,
    retry_streaming,
)
from tests.helpers import collect, run, run_failing, task


async def test_results_keep_input_order_whatever_the_completion_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    delays = random.Random(7).sample(range(1, 41), 40)
    finished: list[int] = []

    async def process(item: int) -> int:
        await trio.sleep(delays[item])
        finished.append(item)
        return item * 10

    pipeline = AsyncPipeline([Map("m", "items", "item", task("t", process, "result"))])
    start = trio.current_time()
    log = await run(pipeline, parameters={"items": list(range(40))})
    assert trio.current_time() - start == pytest.approx(40)  # concurrent: the longest item
    assert finished != sorted(finished)
    assert log.parameters_out["result"] == [i * 10 for i in range(40)]
    assert list(log.steps["m"].branches) == [str(i) for i in range(40)]


async def test_items_see_the_parent_scope_and_their_item() -> None:
    async def generate() -> str:
        return "hello"

    async def process_item(full_text: str, language: str) -> AsyncIterator[dict[str, Any]]:
        yield {"type": "status", "message": f"Processing {language}"}
        yield {"type": "done", "result": f"[{language.upper()}] {full_text}"}

    pipeline = AsyncPipeline(
        [
            AsyncPythonTask("generate_text", generate, returns=["full_text"]),
            Map(
                "process_languages",
                iterate_on="languages",
                iterate_as="language",
                branch=task("process_language", process_item, "result"),
            ),
        ]
    )
    events = await collect(
        pipeline,
        parameters={"languages": ["es", "fr"]},
        attribution=True,
    )
    log_events = [e for e in events if e["type"] == "status"]
    assert {e["_meta"]["step"] for e in log_events} == {
        "process_languages.0.process_language",
        "process_languages.1.process_language",
    }
    async with pipeline.stream(parameters={"languages": ["es", "fr"]}) as stream:
        async for _ in stream:
            pass
    out = stream.run_log.parameters_out
    assert out["result"] == ["[ES] hello", "[FR] hello"]
    assert "language" not in out  # the item binding stays inside the branch
    step = stream.run_log.steps["process_languages"]
    branch = step.branches["1"].steps["process_language"]
    assert branch.path == "process_languages.1.process_language"


async def test_reducer_applies_to_each_name_and_missing_values_are_none() -> None:
    async def first(n: int) -> str:
        return f"first {n}"

    async def other(n: int) -> tuple[str, int]:
        return f"other {n}", n

    branch = AsyncPipeline(
        [
            Conditional(
                "route",
                "n",
                {"1": task("t", first, "a"), "2": task("t", other, "b", "c")},
            )
        ]
    )
    log = await run(AsyncPipeline([Map("m", "ns", "n", branch)]), parameters={"ns": [1, 2, 2]})
    assert log.parameters_out["a"] == ["first 1", None, None]
    assert log.parameters_out["b"] == [None, "other 2", "other 2"]
    reduced = AsyncPipeline([Map("m", "ns", "n", branch, reducer=lambda values: len(values))])
    log = await run(reduced, parameters={"ns": [1, 2, 2]})
    assert (log.parameters_out["a"], log.parameters_out["c"]) == (3, 3)


async def test_an_empty_list_gives_empty_lists() -> None:
    calls: list[int] = []

    async def process(item: int) -> tuple[int, int]:
        calls.append(item)
        return item, item

    branch = task("t", process, "x", "y")
    log = await run(AsyncPipeline([Map("m", "items", "item", branch)]), parameters={"items": []})
    assert calls == []
    assert (log.parameters_out["x"], log.parameters_out["y"]) == ([], [])
    assert log.steps["m"].status is Status.SUCCESS
    summed = AsyncPipeline([Map("m", "items", "item", branch, reducer=sum)])
    log = await run(summed, parameters={"items": []})
    assert log.parameters_out["x"] == 0


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        (
            {"other": 1},
            "step 'm': 'iterate_on' names parameter 'items', which is not set "
            "(available parameters: other)",
        ),
        (
            {"items": "abc"},
            "step 'm': 'iterate_on' parameter 'items' must be a list (got str 'abc')",
        ),
        (
            {"items": {"a": 1}},
            "step 'm': 'iterate_on' parameter 'items' must be a list (got dict {'a': 1})",
        ),
    ],
)
async def test_a_missing_or_non_list_parameter_fails_the_step_and_is_recorded(
    parameters: dict[str, Any], message: str
) -> None:
    async def process(item: Any) -> None:
        return None

    pipeline = AsyncPipeline([Map("m", "items", "item", task("t", process))])
    cause, log = await run_failing(pipeline, parameters=parameters)
    assert isinstance(cause, ParameterError)
    assert str(cause) == message
    assert log.status is Status.FAIL
    assert log.steps["m"].status is Status.FAIL
    assert log.steps["m"].attempts[0].error_message == message


async def test_max_concurrency_bounds_the_items_running_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    running = 0
    most = 0
    started: list[int] = []

    async def process(item: int) -> None:
        nonlocal running, most
        started.append(item)
        running += 1
        most = max(most, running)
        await trio.sleep(1)
        running -= 1

    pipeline = AsyncPipeline([Map("m", "items", "item", task("t", process), max_concurrency=3)])
    start = trio.current_time()
    await run(pipeline, parameters={"items": list(range(10))})
    assert most == 3
    assert trio.current_time() - start == pytest.approx(4)  # ceil(10 / 3) rounds of 1 s
    assert started[:3] == sorted(started[:3])
    assert sorted(started[3:]) == list(range(3, 10))


async def test_first_failing_item_cancels_the_others() -> None:
    finally_ran: list[int] = []
    all_started = trio.Event()
    count = 0

    async def process(item: int) -> AsyncIterator[dict[str, Any]]:
        nonlocal count
        try:
            yield {"type": "started", "item": item}
            count += 1
            if count == 5:
                all_started.set()
            if item == 2:
                await all_started.wait()
                raise ValueError("item 2 failed")
            await trio.sleep_forever()
            yield {"type": "never"}
        finally:
            finally_ran.append(item)

    pipeline = AsyncPipeline([Map("m", "items", "item", task("t", process))])
    async with pipeline.stream(parameters={"items": list(range(5))}) as events:
        seen: list[dict[str, Any]] = []
        with pytest.raises(ExecutionFailedError) as caught:
            async for event in events:
                seen.append(event)
    assert type(caught.value.__cause__) is ValueError
    assert caught.value.step == "m.2.t"
    assert sorted(finally_ran) == [0, 1, 2, 3, 4]
    assert {e["type"] for e in seen} == {"started"}
    statuses = [b.status for b in events.run_log.steps["m"].branches.values()]
    assert statuses == [Status.CANCELLED] * 2 + [Status.FAIL] + [Status.CANCELLED] * 2


async def test_without_fail_fast_errors_are_collected_in_input_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def process(item: int) -> int:
        await trio.sleep(10 - item)
        if item % 2:
            raise ValueError(f"item {item} failed")
        return item

    pipeline = AsyncPipeline(
        [Map("m", "items", "item", task("t", process, "out"), fail_fast=False)]
    )
    cause, log = await run_failing(pipeline, parameters={"items": [0, 1, 2, 3]})
    assert isinstance(cause, ExceptionGroup)
    assert [str(e) for e in cause.exceptions] == ["item 1 failed", "item 3 failed"]
    statuses = [b.status for b in log.steps["m"].branches.values()]
    assert statuses == [Status.SUCCESS, Status.FAIL, Status.SUCCESS, Status.FAIL]


async def test_max_concurrency_stops_starting_items_after_a_failure() -> None:
    started: list[int] = []

    async def process(item: int) -> None:
        started.append(item)
        if item == 1:
            raise ValueError("stop")

    pipeline = AsyncPipeline([Map("m", "items", "item", task("t", process), max_concurrency=2)])
    cause, log = await run_failing(pipeline, parameters={"items": list(range(100))})
    assert str(cause) == "stop"
    assert len(started) < 100
    assert len(log.steps["m"].branches) < 100


async def test_timeout_on_map(autojump_clock: trio.testing.MockClock) -> None:
    async def process(item: int) -> None:
        await trio.sleep(item)

    pipeline = AsyncPipeline([Map("m", "items", "item", task("t", process), timeout=2.5)])
    cause, log = await run_failing(pipeline, parameters={"items": [1, 2, 3, 4]})
    assert isinstance(cause, StepTimeoutError)
    assert str(cause) == "step 'm': timeout of 2.5 s exceeded"
    statuses = [b.status for b in log.steps["m"].branches.values()]
    assert statuses == [Status.SUCCESS, Status.SUCCESS, Status.CANCELLED, Status.CANCELLED]


async def test_on_failure_on_map_recovers() -> None:
    async def process(item: int) -> None:
        raise ValueError(f"bad {item}")

    async def recover() -> str:
        return "recovered"

    pipeline = AsyncPipeline(
        [Map("m", "items", "item", task("t", process), on_failure=task("fix", recover, "state"))]
    )
    log = await run(pipeline, parameters={"items": [1]})
    assert log.status is Status.SUCCESS
    assert log.parameters_out["state"] == "recovered"
    assert log.steps["m"].status is Status.FAIL


async def test_a_tuple_parameter_is_accepted() -> None:
    async def double(item: int) -> int:
        return item * 2

    pipeline = AsyncPipeline([Map("m", "items", "item", task("t", double, "out"))])
    log = await run(pipeline, parameters={"items": (1, 2)})
    assert log.parameters_out["out"] == [2, 4]


def test_definition_errors_name_the_step_and_field() -> None:
    branch = task("t", _noop)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"iterate_on": ""}, "'iterate_on' must be a non-empty str (a parameter name) (got '')"),
        ({"iterate_as": 3}, "'iterate_as' must be a non-empty str (a parameter name) (got 3)"),
        ({"branch": branch.steps[0]}, "'branch' must be an AsyncPipeline"),
        ({"reducer": "sum"}, "'reducer' must be a callable taking the list of results"),
        ({"max_concurrency": 0}, "'max_concurrency' must be an int >= 1 or None (got 0)"),
        ({"max_concurrency": True}, "'max_concurrency' must be an int >= 1 or None (got True)"),
        ({"fail_fast": None}, "'fail_fast' must be a bool (got None)"),
        ({"concurrency": 2}, "unknown keyword 'concurrency'"),
    ]
    for changes, message in cases:
        kwargs: dict[str, Any] = {"iterate_on": "xs", "iterate_as": "x", "branch": branch}
        kwargs.update(changes)
        with pytest.raises(PipelineDefinitionError, match=re.escape(message)) as caught:
            Map("mapper", **kwargs)
        assert str(caught.value).startswith("Map 'mapper'")


def _noop() -> None:
    return None


async def test_retrying_a_failed_map_runs_only_the_failed_items_again() -> None:
    calls: list[int] = []
    broken = {2}

    async def work(item: int) -> int:
        calls.append(item)
        if item in broken:
            raise ValueError(f"bad {item}")
        return item * 10

    branch = task("w", work, "out")
    pipeline = AsyncPipeline([Map("m", "items", "item", branch, fail_fast=False)])
    first = pipeline.execute_streaming(parameters={"items": [0, 1, 2, 3]})
    with pytest.raises(ExecutionFailedError):
        async for _ in first:
            pass
    assert sorted(calls) == [0, 1, 2, 3]
    calls.clear()
    broken.clear()
    again = retry_streaming(pipeline, first.run_id)
    async for _ in again:
        pass
    assert calls == [2]
    assert again.run_log.status is Status.SUCCESS
    assert again.run_log.parameters_out["out"] == [0, 10, 20, 30]
