"""Reference example "AsyncGenerator Patterns" (best practices), as written, through ``runnable``.

The snippet is the generator function; it is run as a task (supplied, marked as such) whose
``done`` event sets ``final_result`` and ``metadata``. Its ``input_data`` parameter is supplied
as ``RUNNABLE_PRM_input_data``, set in the ``__main__`` block (an existing value wins).

Run it with ``python examples/reference/best_practice_stream.py``.
"""

# The reference's code is kept as written: no reformatting, no lint rewrites.
# fmt: off
# ruff: noqa: UP035

# Supplied: names the snippet takes from the examples above it on the reference page.
import asyncio
from typing import AsyncGenerator

from runnable import AsyncPythonTask


# The snippet, as written:
async def well_structured_stream(input_data: str) -> AsyncGenerator[dict, None]:
    """Best practice streaming function structure."""
    try:
        # Always start with status
        yield {"type": "status", "status": "starting", "input": input_data}

        # Processing with progress updates
        steps = ["step1", "step2", "step3"]
        for i, step in enumerate(steps):
            yield {"type": "progress", "step": step, "completed": i, "total": len(steps)}
            await asyncio.sleep(0.1)  # Your actual work here

        # Stream incremental results if applicable
        result_parts = ["part1", "part2", "part3"]
        full_result = []
        for part in result_parts:
            yield {"type": "chunk", "data": part}
            full_result.append(part)
            await asyncio.sleep(0.05)

        # Always end with complete data
        yield {
            "type": "done",
            "final_result": " ".join(full_result),
            "metadata": {"processing_time": "estimated"}
        }

    except Exception as e:
        yield {"type": "error", "error": str(e)}
        raise


# Supplied: run it as a task.
async def main():
    task = AsyncPythonTask(
        name="well_structured",
        function=well_structured_stream,
        returns=["final_result", "metadata"],
    )
    run = task.as_async_pipeline().execute_streaming()
    async for event in run:
        print(f"Event: {event}")
    print(f"final_result = {run.run_log.parameters_out['final_result']!r}")


if __name__ == "__main__":
    import os

    os.environ.setdefault("RUNNABLE_PRM_input_data", "quarterly figures")
    asyncio.run(main())
