"""W8 on runnable_trio through ``compat/`` (``import runnable``) under ``asyncio.run``.

The same code a reference user writes, with per-run parameters instead of the environment.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from typing import Any

import runnable
from _probe import marginal_rate, now
from runnable import AsyncPipeline, AsyncPythonTask, Parallel

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
        await _drain(pipeline, {"n": 100})
        small = await _drain(pipeline, {"n": n // 10})
        large = await _drain(pipeline, {"n": n})
        return {"s_per_event": 1 / marginal_rate(n // 10, small, n, large)}

    return asyncio.run(stream())


WORKLOADS = {"W8": w8_asyncio_host}
