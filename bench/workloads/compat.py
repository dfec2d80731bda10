"""W8 on runnable_trio through ``compat/`` (``import runnable``) under ``asyncio.run``.

The same code a reference user writes, with per-run parameters instead of the environment.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from typing import Any

import runnable
from _probe import marginal, now
from runnable import AsyncPipeline, AsyncPythonTask

__all__ = ["WORKLOADS"]

if "runnable_trio" not in sys.modules:
    raise ImportError(f"'runnable' here is not this project's compat/ layer: {runnable!r}")


async def _produce(n: int) -> AsyncIterator[dict[str, Any]]:
    for i in range(n):
        yield {"type": "chunk", "i": i}


async def _sleep_02() -> None:
    await asyncio.sleep(0.2)


async def _drain(pipeline: AsyncPipeline, parameters: dict[str, Any] | None = None) -> float:
    start = now()
    async for _ in pipeline.execute_streaming(parameters=parameters):
        pass
    return now() - start


def w8_asyncio_host(part: str, n: int = 0, branches: int = 0) -> dict[str, float]:
    """W1 per event (``part="stream"``) or W3's wall time (``part="parallel"``)."""
    if part == "parallel":
        from runnable import Parallel

        task = AsyncPythonTask(name="sleep", function=_sleep_02)

        def fan(width: int) -> AsyncPipeline:
            return AsyncPipeline(
                [
                    Parallel(
                        "fan", branches={f"b{i}": task.as_async_pipeline() for i in range(width)}
                    )
                ]
            )

        async def parallel() -> dict[str, float]:
            await _drain(fan(1))
            return {"wall_s": await _drain(fan(branches))}

        return asyncio.run(parallel())

    pipeline = AsyncPythonTask(name="produce", function=_produce).as_async_pipeline()

    async def stream() -> dict[str, float]:
        per_event, _ = await marginal(lambda count: _drain(pipeline, {"n": count}), n // 10, n)
        return {"s_per_event": per_event}

    return asyncio.run(stream())


WORKLOADS = {"W8": w8_asyncio_host}
