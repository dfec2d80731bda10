"""Composite steps inside composite steps, to any depth, and inside on_failure pipelines."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from runnable_trio import (
    AsyncPipeline,
    AsyncPythonTask,
    Conditional,
    ExecutionFailedError,
    Loop,
    Map,
    Parallel,
    Retry,
    Status,
)
from tests.helpers import collect, run, task


async def square(n: int) -> Any:
    yield {"type": "squared", "n": n}
    yield {"type": "done", "square": n * n}


async def test_map_inside_a_parallel_branch(autojump_clock: trio.testing.MockClock) -> None:
    async def slow_label(label: str) -> str:
        await trio.sleep(1)
        return label.upper()

    pipeline = AsyncPipeline(
        [
            Parallel(
                "outer",
                {
                    "numbers": AsyncPipeline(
                        [Map("inner", "ns", "n", task("sq", square, "square"), reducer=sum)]
                    ),
                    "label": task("lbl", slow_label, "loud"),
                },
            )
        ]
    )
    start = trio.current_time()
    events = await collect(
        pipeline,
        parameters={"ns": [1, 2, 3], "label": "x"},
        attribution=True,
    )
    assert trio.current_time() - start == pytest.approx(1)
    steps = {e["_meta"]["step"] for e in events if e["type"] == "squared"}
    assert steps == {
        "outer.numbers.inner.0.sq",
        "outer.numbers.inner.1.sq",
        "outer.numbers.inner.2.sq",
    }
    log = await run(pipeline, parameters={"ns": [1, 2, 3], "label": "x"})
    assert log.parameters_out["square"] == 14
    assert log.parameters_out["loud"] == "X"
    inner = log.steps["outer"].branches["numbers"].steps["inner"]
    assert inner.branches["2"].steps["sq"].path == "outer.numbers.inner.2.sq"


async def test_parallel_inside_a_map_branch() -> None:
    async def plus(n: int) -> int:
        return n + 1

    async def times(n: int) -> int:
        return n * 10

    branch = AsyncPipeline(
        [Parallel("both", {"add": task("a", plus, "added"), "mul": task("m", times, "multiplied")})]
    )
    log = await run(AsyncPipeline([Map("each", "ns", "n", branch)]), parameters={"ns": [1, 2]})
    assert log.parameters_out["added"] == [2, 3]
    assert log.parameters_out["multiplied"] == [10, 20]
    assert log.steps["each"].branches["1"].steps["both"].branches["mul"].steps["m"].path == (
        "each.1.both.mul.m"
    )


async def test_loop_inside_a_map() -> None:
    async def grow(n: int, total: int = 0) -> tuple[int, bool]:
        return total + n, total + n >= 3 * n

    branch = AsyncPipeline(
        [
            Loop(
                "grow",
                task("g", grow, "total", "enough"),
                max_iterations=10,
                break_on="enough",
                index_as="i",
            )
        ]
    )
    log = await run(AsyncPipeline([Map("each", "ns", "n", branch)]), parameters={"ns": [1, 5]})
    # Each item's loop starts from the parent's scope, not from a sibling item's values.
    assert log.parameters_out["total"] == [3, 15]
    assert list(log.steps["each"].branches["1"].steps["grow"].branches) == ["0", "1", "2"]


async def test_composites_inside_an_on_failure_pipeline() -> None:
    async def fail() -> None:
        raise ValueError("primary failed")

    async def notify(channel: str) -> str:
        return f"sent to {channel}"

    recovery = AsyncPipeline(
        [
            Map("notify_all", "channels", "channel", task("send", notify, "sent")),
            Conditional("escalate", "severity", {"high": task("page", notify, "paged")}),
        ]
    )
    pipeline = AsyncPipeline([AsyncPythonTask("work", fail, on_failure=recovery)])
    log = await run(
        pipeline, parameters={"channels": ["mail", "chat"], "severity": "high", "channel": "x"}
    )
    assert log.status is Status.SUCCESS
    assert log.parameters_out["sent"] == ["sent to mail", "sent to chat"]
    assert log.parameters_out["paged"] == "sent to x"
    sent = log.steps["work"].branches["%on_failure"].steps["notify_all"].branches["1"]
    assert sent.steps["send"].path == "work.%on_failure.notify_all.1.send"


async def test_a_nested_group_stays_a_member_and_is_not_flattened(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def fail(n: int) -> None:
        await trio.sleep(n)
        raise ValueError(f"item {n} failed")

    async def fine() -> None:
        await trio.sleep(10)

    inner = AsyncPipeline([Map("inner", "ns", "n", task("f", fail), fail_fast=False)])
    pipeline = AsyncPipeline([Parallel("outer", {"items": inner, "other": task("ok", fine)})])
    async with pipeline.stream(parameters={"ns": [1, 2]}) as events:
        with pytest.raises(ExecutionFailedError) as caught:
            async for _ in events:
                pass
    # One branch of "outer" failed: its error (the inner Map's group) is raised unchanged.
    cause = caught.value.__cause__
    assert isinstance(cause, ExceptionGroup)
    assert str(cause).startswith("step 'outer.items.inner': 2 branches failed")
    assert [str(e) for e in cause.exceptions] == ["item 1 failed", "item 2 failed"]
    assert events.run_log.steps["outer"].branches["other"].status is Status.CANCELLED


async def test_a_map_names_every_name_its_nested_composites_can_assign() -> None:
    async def one() -> int:
        return 1

    branch = AsyncPipeline(
        [
            Parallel("p", {"a": task("t", one, "from_parallel")}),
            Conditional("c", "k", {"x": task("t", one, "from_conditional")}),
            Loop("l", task("t", one, "from_loop"), 1, "stop", "i"),
            AsyncPythonTask("t", one, returns=["plain"], on_failure=task("r", one, "recovered")),
        ]
    )
    log = await run(AsyncPipeline([Map("m", "items", "item", branch)]), parameters={"items": []})
    assert {k: v for k, v in log.parameters_out.items() if k != "items"} == {
        "from_parallel": [],
        "from_conditional": [],
        "from_loop": [],
        "plain": [],
        "recovered": [],
    }


async def test_retries_inside_a_branch_are_recorded_per_attempt(
    autojump_clock: trio.testing.MockClock,
) -> None:
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionError(f"attempt {calls} failed")
        return "ok"

    branch = task("flaky", flaky, "result", retry=Retry(attempts=3, backoff=1))
    log = await run(AsyncPipeline([Parallel("p", {"a": branch})]))
    attempts = log.steps["p"].branches["a"].steps["flaky"].attempts
    assert [a.status for a in attempts] == [Status.FAIL, Status.FAIL, Status.SUCCESS]
    assert attempts[0].error_message == "attempt 1 failed"
    assert log.parameters_out["result"] == "ok"
