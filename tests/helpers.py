"""Helpers shared by the test modules."""

from __future__ import annotations

from typing import Any

import pytest

from runnable_trio import AsyncPipeline, AsyncPythonTask, ExecutionFailedError, RunLog


async def collect(pipeline: AsyncPipeline, **kwargs: Any) -> list[dict[str, Any]]:
    """Every event of a run, through ``stream()``."""
    async with pipeline.stream(**kwargs) as events:
        return [event async for event in events]


def task(name: str, function: Any, *returns: str, **kwargs: Any) -> AsyncPipeline:
    """A one-task pipeline of ``function`` returning ``returns``."""
    return AsyncPythonTask(name, function, returns=list(returns), **kwargs).as_async_pipeline()


async def run(pipeline: AsyncPipeline, **kwargs: Any) -> RunLog:
    """Run ``pipeline`` to its end through ``stream()``; its run log."""
    async with pipeline.stream(**kwargs) as events:
        async for _ in events:
            pass
    return events.run_log


async def run_failing(pipeline: AsyncPipeline, **kwargs: Any) -> tuple[BaseException, RunLog]:
    """Run ``pipeline``, which must fail; the cause of its failure and its run log."""
    async with pipeline.stream(**kwargs) as events:
        with pytest.raises(ExecutionFailedError) as caught:
            async for _ in events:
                pass
    assert caught.value.__cause__ is not None
    return caught.value.__cause__, events.run_log
