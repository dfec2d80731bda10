"""The reference's basic async function, on Trio: one ``async def`` task whose return value
becomes the ``result`` parameter.

A coroutine task streams no events of its own; ``attribution=True`` adds the framework's
lifecycle events (run and step started/completed), each tagged with the run id, a sequence
number, the step path and a timestamp.

Run it with ``python examples/basic_async.py``.
"""

from __future__ import annotations

from typing import Any

import trio

from runnable_trio import AsyncPythonTask


async def fetch_data() -> dict[str, Any]:
    await trio.sleep(2)  # simulate an async operation
    return {"status": "complete", "data": [1, 2, 3]}


async def main() -> None:
    task = AsyncPythonTask(name="fetch_task", function=fetch_data, returns=["result"])
    pipeline = task.as_async_pipeline()
    run = pipeline.execute_streaming(attribution=True)
    async for event in run:
        print(f"Event: {event}")
    print(f"result = {run.run_log.parameters_out['result']}")


if __name__ == "__main__":
    trio.run(main)
