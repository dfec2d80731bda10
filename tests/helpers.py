"""Helpers shared by the test modules (``run``/``run_failing`` on runnable_trio.testing)."""

from __future__ import annotations

from typing import Any

from runnable_trio import AsyncPipeline, AsyncPythonTask, RunLog
from runnable_trio.testing import assert_final, run_to_end


async def collect(pipeline: AsyncPipeline, **kwargs: Any) -> list[dict[str, Any]]:
    """Every event of a run, through ``stream()``."""
    async with pipeline.stream(**kwargs) as events:
        return [event async for event in events]


def task(name: str, function: Any, *returns: str, **kwargs: Any) -> AsyncPipeline:
    """A one-task pipeline of ``function`` returning ``returns``."""
    return AsyncPythonTask(name, function, returns=list(returns), **kwargs).as_async_pipeline()


async def run(pipeline: AsyncPipeline, **kwargs: Any) -> RunLog:
    """Run ``pipeline`` to its end through ``stream()``; its run log, checked final.

    A failed run raises its ``ExecutionFailedError``, as iterating the stream does.
    """
    result = await run_to_end(pipeline, **kwargs)
    assert_final(result.run_log)
    if result.error is not None:
        raise result.error
    return result.run_log


async def run_failing(pipeline: AsyncPipeline, **kwargs: Any) -> tuple[BaseException, RunLog]:
    """Run ``pipeline``, which must fail; the cause of its failure and its run log (final)."""
    result = await run_to_end(pipeline, **kwargs)
    assert result.error is not None, (
        f"the run was expected to fail; it ended {result.run_log.status}"
    )
    assert result.cause is not None
    assert_final(result.run_log)
    return result.cause, result.run_log
