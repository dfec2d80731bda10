"""Reference example "Basic Async Function", as written, through ``runnable`` (compat/).

An ``async def`` task whose return value becomes the ``result`` parameter; the pipeline's
stream is iterated from ``asyncio.run``. Nothing to supply: the function takes no parameters.

It prints nothing, as written: a coroutine task streams no events of its own (its result
is in the run log; ``execute_streaming(attribution=True)`` would add lifecycle events).

Run it with ``python examples/reference/basic_async.py``.
"""

# The reference's code is kept as written: no reformatting, no lint rewrites.
# fmt: off
# ruff: noqa: I001

from runnable import AsyncPythonTask
import asyncio


async def fetch_data():
    await asyncio.sleep(2)  # Simulate async operation
    return {"status": "complete", "data": [1, 2, 3]}


async def main():
    task = AsyncPythonTask(
        name="fetch_task",
        function=fetch_data,
        returns=["result"]
    )

    # Convert to pipeline and execute with streaming
    pipeline = task.as_async_pipeline()

    # Stream events from the async pipeline
    async for event in pipeline.execute_streaming():
        print(f"Event: {event}")

    return pipeline


if __name__ == "__main__":
    asyncio.run(main())
