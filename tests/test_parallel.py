"""Parallel: concurrent branches, scopes and merging, failure policy, cancellation."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
import trio.testing

from runnable_trio import (
    AsyncPipeline,
    AsyncPythonTask,
    BranchError,
    ExecutionFailedError,
    Parallel,
    PipelineDefinitionError,
    Status,
    StepTimeoutError,
)
from tests.helpers import collect, run, run_failing, task


async def test_branches_run_concurrently(autojump_clock: trio.testing.MockClock) -> None:
    async def nap() -> None:
        await trio.sleep(1)

    branches = {f"b{i}": task("nap", nap) for i in range(50)}
    start = trio.current_time()
    log = await run(AsyncPipeline([Parallel("fan", branches)]))
    assert trio.current_time() - start == pytest.approx(1)
    assert log.status is Status.SUCCESS
    assert list(log.steps["fan"].branches) == list(branches)
    assert all(b.status is Status.SUCCESS for b in log.steps["fan"].branches.values())


async def test_branches_see_the_parent_scope_and_results_merge_back() -> None:
    async def generate(prompt: str) -> str:
        return f"text for {prompt}"

    async def spanish(full_text: str) -> AsyncIterator[dict[str, Any]]:
        yield {"type": "done", "spanish_translation": f"ES: {full_text}"}

    async def french(full_text: str) -> str:
        return f"FR: {full_text}"

    async def both(spanish_translation: str, french_translation: str) -> str:
        return f"{spanish_translation} | {french_translation}"

    pipeline = AsyncPipeline(
        [
            AsyncPythonTask("generate", generate, returns=["full_text"]),
            Parallel(
                "translate",
                {
                    "spanish": task("spanish_task", spanish, "spanish_translation"),
                    "french": task("french_task", french, "french_translation"),
                },
            ),
            AsyncPythonTask("join", both, returns=["joined"]),
        ]
    )
    log = await run(pipeline, parameters={"prompt": "hi"})
    assert log.parameters_out["joined"] == "ES: text for hi | FR: text for hi"
    assert log.steps["translate"].assigned == {
        "spanish_translation": "ES: text for hi",
        "french_translation": "FR: text for hi",
    }
    spanish_log = log.steps["translate"].branches["spanish"].steps["spanish_task"]
    assert spanish_log.path == "translate.spanish.spanish_task"


async def test_a_branch_does_not_see_what_a_sibling_assigned() -> None:
    first_done = trio.Event()

    async def first() -> str:
        first_done.set()
        return "from first"

    async def second(x: str = "unset") -> str:
        await first_done.wait()
        return x

    pipeline = AsyncPipeline(
        [Parallel("p", {"a": task("t", first, "x"), "b": task("t", second, "seen")})]
    )
    log = await run(pipeline)
    assert log.parameters_out["x"] == "from first"
    assert log.parameters_out["seen"] == "unset"


async def test_branch_events_interleave_in_real_time_with_branch_paths() -> None:
    a_sent = trio.Event()
    b_sent = trio.Event()

    async def branch_a() -> AsyncIterator[dict[str, Any]]:
        yield {"type": "chunk", "text": "a1"}
        a_sent.set()
        await b_sent.wait()
        yield {"type": "chunk", "text": "a2"}

    async def branch_b() -> AsyncIterator[dict[str, Any]]:
        await a_sent.wait()
        yield {"type": "chunk", "text": "b1"}
        b_sent.set()

    pipeline = AsyncPipeline(
        [Parallel("translate", {"a": task("a_task", branch_a), "b": task("b_task", branch_b)})]
    )
    events = await collect(pipeline, attribution=True)
    chunks = [(e["text"], e["_meta"]["step"]) for e in events if e["type"] == "chunk"]
    assert chunks == [
        ("a1", "translate.a.a_task"),
        ("b1", "translate.b.b_task"),
        ("a2", "translate.a.a_task"),
    ]


async def test_a_name_assigned_by_two_branches_fails_at_fan_in() -> None:
    async def one() -> int:
        return 1

    pipeline = AsyncPipeline(
        [Parallel("p", {"left": task("t", one, "x"), "right": task("t", one, "x")})]
    )
    cause, log = await run_failing(pipeline)
    assert isinstance(cause, BranchError)
    assert str(cause) == (
        "step 'p': branches 'left' and 'right' both assigned 'x'; "
        "give each branch's result its own name"
    )
    assert log.steps["p"].status is Status.FAIL
    assert "x" not in log.parameters_out


async def test_first_failure_cancels_siblings_and_is_raised_unchanged() -> None:
    finally_ran: list[str] = []
    started = trio.Event()

    async def slow() -> AsyncIterator[dict[str, Any]]:
        try:
            yield {"type": "status", "text": "slow started"}
            started.set()
            await trio.sleep_forever()
            yield {"type": "status", "text": "never"}
        finally:
            finally_ran.append("slow")

    async def broken() -> None:
        await started.wait()
        raise ValueError("broken branch")

    pipeline = AsyncPipeline([Parallel("p", {"slow": task("s", slow), "bad": task("b", broken)})])
    async with pipeline.stream() as events:
        seen: list[dict[str, Any]] = []
        with pytest.raises(ExecutionFailedError) as caught:
            async for event in events:
                seen.append(event)
    assert type(caught.value.__cause__) is ValueError
    assert str(caught.value.__cause__) == "broken branch"
    assert caught.value.step == "p.bad.b"
    assert seen == [{"type": "status", "text": "slow started"}]
    assert finally_ran == ["slow"]
    branches = events.run_log.steps["p"].branches
    assert branches["slow"].status is Status.CANCELLED
    assert branches["slow"].steps["s"].status is Status.CANCELLED
    assert branches["bad"].status is Status.FAIL
    assert events.run_log.status is Status.FAIL


async def test_branches_failing_together_give_an_exception_group() -> None:
    go = trio.Event()

    def failing(message: str) -> Any:
        async def fail() -> None:
            await go.wait()
            raise ValueError(message)  # no checkpoint between waking and raising

        return fail

    async def release() -> None:
        await trio.testing.wait_all_tasks_blocked()
        go.set()

    branches = {
        "a": task("t", failing("a failed")),
        "b": task("t", failing("b failed")),
        "go": task("t", release),
    }
    cause, log = await run_failing(AsyncPipeline([Parallel("p", branches)]))
    assert pytest.RaisesGroup(
        pytest.RaisesExc(ValueError, match="^a failed$"),
        pytest.RaisesExc(ValueError, match="^b failed$"),
    ).matches(cause)
    assert str(cause).startswith("step 'p': 2 branches failed")
    assert log.steps["p"].status is Status.FAIL
    assert log.step == "p"


async def test_without_fail_fast_every_branch_finishes_and_errors_are_collected(
    autojump_clock: trio.testing.MockClock,
) -> None:
    finished: list[str] = []

    def sleeper(key: str, seconds: float, fail: bool) -> AsyncPipeline:
        async def work() -> str:
            await trio.sleep(seconds)
            finished.append(key)
            if fail:
                raise ValueError(f"{key} failed")
            return key

        return task("t", work, f"out_{key}")

    branches = {
        "late": sleeper("late", 3, fail=True),
        "ok": sleeper("ok", 5, fail=False),
        "early": sleeper("early", 1, fail=True),
    }
    cause, log = await run_failing(AsyncPipeline([Parallel("p", branches, fail_fast=False)]))
    assert finished == ["early", "late", "ok"]
    # Collected in branch order, not completion order.
    assert pytest.RaisesGroup(
        pytest.RaisesExc(ValueError, match="^late failed$"),
        pytest.RaisesExc(ValueError, match="^early failed$"),
    ).matches(cause)
    assert isinstance(cause, ExceptionGroup)
    assert [str(e) for e in cause.exceptions] == ["late failed", "early failed"]
    statuses = {key: b.status for key, b in log.steps["p"].branches.items()}
    assert statuses == {"late": Status.FAIL, "ok": Status.SUCCESS, "early": Status.FAIL}
    assert "out_ok" not in log.parameters_out  # a failed step gives nothing back


async def test_without_fail_fast_one_error_is_raised_as_itself(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def fail() -> None:
        raise KeyError("only one")

    async def fine() -> None:
        await trio.sleep(1)

    pipeline = AsyncPipeline(
        [Parallel("p", {"x": task("t", fail), "y": task("t", fine)}, fail_fast=False)]
    )
    cause, log = await run_failing(pipeline)
    assert type(cause) is KeyError
    assert log.steps["p"].branches["y"].status is Status.SUCCESS


async def test_leaving_the_stream_cancels_every_live_branch() -> None:
    finally_ran = 0

    async def live() -> AsyncIterator[dict[str, Any]]:
        nonlocal finally_ran
        try:
            yield {"type": "started"}
            await trio.sleep_forever()
        finally:
            finally_ran += 1

    branches = {f"b{i}": task("t", live) for i in range(100)}
    pipeline = AsyncPipeline([Parallel("p", branches)])
    async with pipeline.stream() as events:
        started = 0
        async for _ in events:
            started += 1
            if started == 100:
                break
    assert finally_ran == 100
    log = events.run_log
    assert log.status is Status.CANCELLED
    assert log.steps["p"].status is Status.CANCELLED
    assert {b.status for b in log.steps["p"].branches.values()} == {Status.CANCELLED}


async def test_closing_execute_streaming_cancels_every_live_branch() -> None:
    finally_ran = 0

    async def live() -> AsyncIterator[dict[str, Any]]:
        nonlocal finally_ran
        try:
            yield {"type": "started"}
            await trio.sleep_forever()
        finally:
            finally_ran += 1

    pipeline = AsyncPipeline([Parallel("p", {f"b{i}": task("t", live) for i in range(100)})])
    run_ = pipeline.execute_streaming()
    started = 0
    async for _ in run_:
        started += 1
        if started == 100:
            break
    await run_.aclose()
    assert finally_ran == 100
    assert run_.run_log.status is Status.CANCELLED


async def test_timeout_on_parallel_cancels_its_branches(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cancelled: list[str] = []

    async def hang() -> None:
        try:
            await trio.sleep(100)
        finally:
            cancelled.append("hang")

    pipeline = AsyncPipeline([Parallel("p", {"a": task("t", hang)}, timeout=5)])
    start = trio.current_time()
    cause, log = await run_failing(pipeline)
    assert trio.current_time() - start == pytest.approx(5)
    assert isinstance(cause, StepTimeoutError)
    assert str(cause) == "step 'p': timeout of 5 s exceeded"
    assert cancelled == ["hang"]
    assert log.steps["p"].branches["a"].status is Status.CANCELLED


async def test_on_failure_on_parallel_recovers() -> None:
    async def fail() -> None:
        raise ValueError("nope")

    async def recover() -> str:
        return "recovered"

    async def after() -> None:
        raise AssertionError("skipped after recovery")

    pipeline = AsyncPipeline(
        [
            Parallel("p", {"a": task("t", fail)}, on_failure=task("fix", recover, "state")),
            AsyncPythonTask("after", after),
        ]
    )
    log = await run(pipeline)
    assert log.status is Status.SUCCESS
    assert log.steps["p"].status is Status.FAIL
    assert log.steps["p"].branches["%on_failure"].steps["fix"].path == "p.%on_failure.fix"
    assert log.parameters_out["state"] == "recovered"
    assert "after" not in log.steps


def test_definition_errors_name_the_step_and_field() -> None:
    pipeline = task("t", _noop)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"branches": {}}, "'branches' must be a non-empty dict of branch names to AsyncPipeline"),
        ({"branches": [pipeline]}, "'branches' must be a non-empty dict"),
        ({"branches": {"a.b": pipeline}}, "free of '.' and '%'"),
        ({"branches": {"%x": pipeline}}, "free of '.' and '%'"),
        ({"branches": {"": pipeline}}, "keyed by non-empty str"),
        ({"branches": {"a": "nope"}}, "but branch 'a' is not (got 'nope')"),
        ({"branches": {"a": pipeline}, "fail_fast": 1}, "'fail_fast' must be a bool"),
        ({"branches": {"a": pipeline}, "retries": 2}, "unknown keyword 'retries'"),
    ]
    for kwargs, message in cases:
        with pytest.raises(PipelineDefinitionError, match=re.escape(message)) as caught:
            Parallel("fan", **kwargs)
        assert str(caught.value).startswith("Parallel 'fan'")


def test_the_branches_dict_is_copied() -> None:
    branches = {"a": task("t", _noop)}
    step = Parallel("p", branches)
    branches["b"] = task("t", _noop)
    assert list(step.branches) == ["a"]


def _noop() -> None:
    return None
