"""Reference example "Stream End Configuration", as written, through ``runnable``.

The snippet is one constructor call: a task whose return values come from the generator's
``type="complete"`` event instead of ``"done"``. It needs a generator to call
(``my_async_generator``) and something to run the task, so both are supplied, marked as such;
the call itself is as written. Nothing else to supply.

Run it with ``python examples/reference/custom_end_type.py``.
"""

# The reference's code is kept as written: no reformatting, no lint rewrites.
# fmt: off

# Supplied: a generator for the snippet to name, and a runner for the task it builds.
import asyncio

from runnable import AsyncPythonTask


async def my_async_generator():
    yield {"type": "progress", "percent": 50}
    await asyncio.sleep(0.1)
    yield {"type": "complete", "result": "all work finished"}


def custom_stream_task():
    return (
        # The snippet, as written:
        AsyncPythonTask(
            name="custom_stream",
            function=my_async_generator,
            returns=["result"],
            stream_end_type="complete"  # Look for type="complete" events
        )
    )


async def main():
    run = custom_stream_task().as_async_pipeline().execute_streaming()
    async for event in run:
        print(f"Event: {event}")
    print(f"result = {run.run_log.parameters_out['result']!r}")


if __name__ == "__main__":
    asyncio.run(main())
