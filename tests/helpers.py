"""Helpers shared by the test modules."""

from __future__ import annotations

from typing import Any

from runnable_trio import AsyncPipeline


async def collect(pipeline: AsyncPipeline, **kwargs: Any) -> list[dict[str, Any]]:
    """Every event of a run, through ``stream()``."""
    async with pipeline.stream(**kwargs) as events:
        return [event async for event in events]
