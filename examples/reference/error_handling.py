"""Reference example "Error Handling", as written, through ``runnable``.

The snippet is a generator that reports its error as an event and re-raises it to fail the
step. It is run twice as a task (supplied, marked as such): with the ``data`` parameter
supplied as ``RUNNABLE_PRM_data`` (set in the ``__main__`` block; an existing value wins) it
succeeds; with empty ``data`` the stream shows the error event, then ends with
``ExecutionFailedError`` naming the run and the step, chained to the ``ValueError``.

Run it with ``python examples/reference/error_handling.py``.
"""

# The reference's code is kept as written: no reformatting, no lint rewrites.
# fmt: off
# ruff: noqa: UP035

# Supplied: names the snippet takes from the examples above it on the reference page.
import asyncio
from typing import AsyncGenerator

from runnable import AsyncPythonTask, ExecutionFailedError


# The snippet, as written:
async def safe_async_operation(data: str) -> AsyncGenerator[dict, None]:
    try:
        yield {"type": "status", "status": "processing"}

        if not data:
            raise ValueError("Empty input data")

        # Your processing
        await asyncio.sleep(0.5)
        result = data.upper()

        yield {"type": "done", "result": result}

    except Exception as e:
        yield {"type": "error", "error": str(e), "failed_input": data}
        # Re-raise to fail the pipeline step
        raise


# Supplied: run it as a task, once as configured and once with empty data.
async def main():
    pipeline = AsyncPythonTask(
        name="safe_operation", function=safe_async_operation, returns=["result"]
    ).as_async_pipeline()
    async for event in pipeline.execute_streaming():
        print(f"Event: {event}")
    try:
        async for event in pipeline.execute_streaming(parameters={"data": ""}):
            print(f"Event: {event}")
    except ExecutionFailedError as failure:
        print(f"Failed: {failure} (cause: {failure.__cause__!r})")


if __name__ == "__main__":
    import os

    os.environ.setdefault("RUNNABLE_PRM_data", "hello")
    asyncio.run(main())
