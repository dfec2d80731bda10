"""runnable_trio.testing with compat/ (``import runnable``) on an asyncio host.

Plain sync tests running their own asyncio loop, as in test_compat_asyncio.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from typing import Any

from runnable import AsyncPipeline, AsyncPythonTask, ExecutionFailedError

from runnable_trio import Status
from runnable_trio.testing import (
    FAULTS_KEY,
    ExtraEvents,
    Raise,
    assert_events,
    assert_final,
    inject,
)


def run_asyncio(main: Coroutine[Any, Any, Any]) -> Any:
    with asyncio.Runner(loop_factory=asyncio.SelectorEventLoop) as runner:
        return runner.run(main)


async def work(x: int) -> int:
    await asyncio.sleep(0.001)  # an asyncio-flavoured function
    return x + 1


async def words() -> AsyncIterator[dict[str, Any]]:
    for word in ("a", "b"):
        await asyncio.sleep(0.001)
        yield {"type": "word", "text": word}


async def consume(pipeline: AsyncPipeline) -> tuple[list[dict[str, Any]], Any, Any]:
    run = pipeline.execute_streaming(parameters={"x": 1})
    events: list[dict[str, Any]] = []
    error = None
    try:
        async for event in run:
            events.append(event)
    except ExecutionFailedError as exc:
        error = exc
    return events, run.run_log, error


def test_a_plan_reaches_compat_runs_started_inside_the_block() -> None:
    pipeline = AsyncPipeline(steps=[AsyncPythonTask(name="w", function=work, returns=["y"])])

    async def main() -> Any:
        with inject({"w": Raise(ValueError("injected"), attempt=1)}) as plan:
            inside = await consume(pipeline)
        outside = await consume(pipeline)
        return inside, outside, plan

    (_, inside_log, inside_error), (_, outside_log, outside_error), plan = run_asyncio(main())
    # compat wraps a task's own exception in CommandCallError, as the reference does
    assert isinstance(inside_error.__cause__.__cause__, ValueError)
    assert inside_log.steps["w"].attempts[0].metrics[FAULTS_KEY] == [
        "raise ValueError('injected') before"
    ]
    assert [i.path for i in plan.injected] == ["w"]
    assert outside_error is None
    assert outside_log.status is Status.SUCCESS
    assert_final(inside_log)
    assert_final(outside_log)


def test_generator_faults_and_event_matching_under_asyncio() -> None:
    pipeline = AsyncPipeline(steps=[AsyncPythonTask(name="g", function=words)])

    async def main() -> Any:
        with inject({"g": ExtraEvents([{"type": "word", "text": "X"}], after_event=1)}):
            return await consume(pipeline)

    events, run_log, error = run_asyncio(main())
    assert error is None
    assert_events(events, [{"type": "word", "text": t} for t in ("a", "X", "b")])
    assert_final(run_log)
