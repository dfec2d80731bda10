"""Loop: repeated iterations carrying parameters, break_on, max_iterations, failures."""

from __future__ import annotations

import re
from typing import Any

import pytest
import trio
import trio.testing

from runnable_trio import (
    AsyncPipeline,
    AsyncPythonTask,
    ExecutionFailedError,
    Loop,
    ParameterError,
    PipelineDefinitionError,
    Status,
    StepTimeoutError,
)
from tests.helpers import collect, run


async def refine(draft: str, i: int) -> tuple[str, bool]:
    draft = f"{draft}+{i}"
    return draft, draft.count("+") >= 3


def refine_loop(max_iterations: int, **kwargs: Any) -> AsyncPipeline:
    branch = AsyncPythonTask("refine", refine, returns=["draft", "good_enough"])
    return AsyncPipeline(
        [
            Loop(
                "improve",
                branch=branch.as_async_pipeline(),
                max_iterations=max_iterations,
                break_on="good_enough",
                index_as="i",
                **kwargs,
            )
        ]
    )


async def test_parameters_carry_over_until_break_on_is_true() -> None:
    log = await run(refine_loop(10), parameters={"draft": "v"})
    assert log.parameters_out["draft"] == "v+0+1+2"
    assert log.parameters_out["good_enough"] is True
    assert "i" not in log.parameters_out  # the index stays inside the loop
    step = log.steps["improve"]
    assert list(step.branches) == ["0", "1", "2"]
    assert step.branches["2"].steps["refine"].path == "improve.2.refine"
    assert step.branches["1"].steps["refine"].attempts[0].parameters_in == {
        "draft": "v+0",
        "i": 1,
    }
    assert step.assigned == {"draft": "v+0+1+2", "good_enough": True}


async def test_max_iterations_ends_the_loop_successfully_with_the_last_values() -> None:
    log = await run(refine_loop(2), parameters={"draft": "v"})
    assert log.status is Status.SUCCESS
    assert log.parameters_out["draft"] == "v+0+1"
    assert log.parameters_out["good_enough"] is False
    assert list(log.steps["improve"].branches) == ["0", "1"]


async def test_the_branch_runs_at_least_once_and_iterations_are_attributed() -> None:
    async def tick(i: int) -> Any:
        yield {"type": "tick", "i": i}
        yield {"type": "done", "stop": True}

    branch = AsyncPythonTask("tick", tick, returns=["stop"]).as_async_pipeline()
    pipeline = AsyncPipeline([Loop("loop", branch, 5, "stop", "i")])
    events = await collect(pipeline, parameters={"stop": True}, attribution=True)
    ticks = [(e["i"], e["_meta"]["step"]) for e in events if e["type"] == "tick"]
    assert ticks == [(0, "loop.0.tick")]


async def test_a_failing_iteration_fails_the_loop_and_stops_it() -> None:
    async def step(i: int) -> bool:
        if i == 1:
            raise ValueError("iteration 1 broke")
        return False

    branch = AsyncPythonTask("s", step, returns=["done"]).as_async_pipeline()
    pipeline = AsyncPipeline([Loop("loop", branch, 5, "done", "i")])
    async with pipeline.stream() as events:
        with pytest.raises(ExecutionFailedError) as caught:
            async for _ in events:
                pass
    assert str(caught.value.__cause__) == "iteration 1 broke"
    assert caught.value.step == "loop.1.s"
    step_log = events.run_log.steps["loop"]
    assert step_log.status is Status.FAIL
    assert {k: b.status for k, b in step_log.branches.items()} == {
        "0": Status.SUCCESS,
        "1": Status.FAIL,
    }


async def test_timeout_on_a_loop(autojump_clock: trio.testing.MockClock) -> None:
    async def slow(i: int) -> bool:
        await trio.sleep(1)
        return False

    branch = AsyncPythonTask("s", slow, returns=["done"]).as_async_pipeline()
    pipeline = AsyncPipeline([Loop("loop", branch, 100, "done", "i", timeout=3.5)])
    async with pipeline.stream() as events:
        with pytest.raises(ExecutionFailedError) as caught:
            async for _ in events:
                pass
    assert isinstance(caught.value.__cause__, StepTimeoutError)
    statuses = [b.status for b in events.run_log.steps["loop"].branches.values()]
    assert statuses == [Status.SUCCESS] * 3 + [Status.CANCELLED]


async def test_leaving_the_stream_cancels_the_running_iteration() -> None:
    finally_ran: list[int] = []

    async def wait(i: int) -> Any:
        try:
            yield {"type": "waiting", "i": i}
            await trio.sleep_forever()
        finally:
            finally_ran.append(i)

    branch = AsyncPythonTask("w", wait).as_async_pipeline()
    pipeline = AsyncPipeline([Loop("loop", branch, 3, "done", "i")])
    async with pipeline.stream() as events:
        async for _ in events:
            break
    assert finally_ran == [0]
    assert events.run_log.status is Status.CANCELLED
    assert events.run_log.steps["loop"].branches["0"].status is Status.CANCELLED


def test_definition_errors_name_the_step_and_field() -> None:
    branch = AsyncPythonTask("s", refine).as_async_pipeline()
    cases: list[tuple[tuple[Any, ...], str]] = [
        ((branch, 0, "stop", "i"), "'max_iterations' must be an int >= 1 (got 0)"),
        ((branch, 2.0, "stop", "i"), "'max_iterations' must be an int >= 1 (got 2.0)"),
        ((branch, 2, "", "i"), "'break_on' must be a non-empty str (a parameter name)"),
        ((branch, 2, "stop", None), "'index_as' must be a non-empty str (a parameter name)"),
        ((branch.steps[0], 2, "stop", "i"), "'branch' must be an AsyncPipeline"),
        ((branch, 2, "i", "i"), "'index_as' and 'break_on' must be different parameters"),
    ]
    for args, message in cases:
        with pytest.raises(PipelineDefinitionError, match=re.escape(message)) as caught:
            Loop("again", *args)
        assert str(caught.value).startswith("Loop 'again'")
    with pytest.raises(PipelineDefinitionError, match="unknown keyword 'until'"):
        Loop("again", branch, 2, "stop", "i", until=3)


async def test_break_on_must_be_a_bool() -> None:
    async def says_false(i: int) -> str:
        return "false"  # truthy: must not end the loop silently

    branch = AsyncPythonTask("t", says_false, returns=["stop"]).as_async_pipeline()
    pipeline = AsyncPipeline([Loop("loop", branch, 5, "stop", "i")])
    with pytest.raises(ExecutionFailedError) as caught:
        async for _ in pipeline.execute_streaming():
            pass
    assert isinstance(caught.value.__cause__, ParameterError)
    assert "'break_on' parameter 'stop' must be a bool after iteration 0 (got str 'false')" in str(
        caught.value.__cause__
    )
