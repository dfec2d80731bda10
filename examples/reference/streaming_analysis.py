"""Reference example "Streaming Execution", as written, through ``runnable``.

An async generator reports progress through four stages and ends with a summary. The snippet on
the reference page uses ``asyncio`` and ``AsyncGenerator`` without importing them (they come
from the examples above it), so those two imports are supplied first, marked as such. The
``data`` parameter is supplied as ``RUNNABLE_PRM_data``, set in the ``__main__`` block (an
existing value wins).

Run it with ``python examples/reference/streaming_analysis.py``.
"""

# The reference's code is kept as written: no reformatting, no lint rewrites.
# fmt: off
# ruff: noqa: UP035

# Supplied: names the snippet takes from the examples above it on the reference page.
import asyncio
from typing import AsyncGenerator

# The snippet, as written:
from runnable import AsyncPipeline, AsyncPythonTask


async def streaming_analysis(data: str) -> AsyncGenerator[dict, None]:
    yield {"type": "status", "message": "Starting analysis"}

    # Simulate processing steps
    steps = ["tokenizing", "parsing", "analyzing", "summarizing"]
    for step in steps:
        yield {"type": "progress", "step": step}
        await asyncio.sleep(0.2)

    yield {"type": "done", "summary": f"Analyzed: {data[:50]}..."}


async def main():
    pipeline = AsyncPipeline(
        steps=[
            AsyncPythonTask(
                name="stream_analysis",
                function=streaming_analysis,
                returns=["summary"]
            )
        ]
    )

    # Stream real-time events from AsyncGenerator function
    async for event in pipeline.execute_streaming():
        print(f"Real-time event: {event}")

    return pipeline


if __name__ == "__main__":
    import os

    os.environ.setdefault("RUNNABLE_PRM_data", "The quarterly report shows growth in all regions")
    asyncio.run(main())
