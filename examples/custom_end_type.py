"""A generator whose results come in a ``complete`` event instead of ``done``.

``stream_end_type="complete"`` names the event holding the returns; its keys map onto
``returns`` by name, so the order of the keys in the event does not matter.

Run it with ``python examples/custom_end_type.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import trio

from runnable_trio import AsyncPythonTask


async def streaming_analysis(data: str) -> AsyncIterator[dict[str, Any]]:
    yield {"type": "status", "message": "Starting analysis"}
    for step in ["tokenizing", "parsing", "analyzing", "summarizing"]:
        yield {"type": "progress", "step": step}
        await trio.sleep(0.2)
    yield {"type": "complete", "word_count": len(data.split()), "summary": f"Analyzed: {data[:50]}"}


async def main() -> None:
    task = AsyncPythonTask(
        name="custom_stream",
        function=streaming_analysis,
        returns=["summary", "word_count"],
        stream_end_type="complete",
    )
    run = task.as_async_pipeline().execute_streaming(
        parameters={"data": "the quick brown fox jumps over the lazy dog"}
    )
    async for event in run:
        print(f"Real-time event: {event}")
    out = run.run_log.parameters_out
    print(f"summary = {out['summary']!r}, word_count = {out['word_count']}")


if __name__ == "__main__":
    trio.run(main)
