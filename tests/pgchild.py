"""A run in a process of its own, for the PostgreSQL store's multi-process tests.

``python -m tests.pgchild CONFIG RUN_ID MODE``:

- ``gated``: one task yielding an event per line read from stdin, until stdin closes;
- ``hang``: step ``first`` succeeds, then step ``second`` prints ``ready`` and waits forever
  (the test kills the process); ``RETRY`` in the environment makes ``second`` succeed and the
  run is a retry of RUN_ID.

Each event's sequence number is printed as it is received, so the parent can synchronise.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator

import trio

from runnable_trio import AsyncPipeline, AsyncPythonTask, retry_streaming

FIRST_CALLS = "first-calls.txt"


async def gated() -> AsyncIterator[dict[str, object]]:
    number = 0
    while True:
        line = await trio.to_thread.run_sync(sys.stdin.readline)
        if not line:
            break
        number += 1
        yield {"type": "chunk", "number": number}
    yield {"type": "done", "count": number}


async def first() -> int:
    with open(FIRST_CALLS, "a", encoding="utf-8") as file:  # noqa: ASYNC230 (tiny, a test)
        file.write("called\n")
    return 41


async def second(value: int) -> int:
    if not os.environ.get("RETRY"):
        print("ready", flush=True)
        await trio.sleep_forever()
    return value + 1


def pipeline(mode: str) -> AsyncPipeline:
    if mode == "gated":
        return AsyncPythonTask("gated", gated, returns=["count"]).as_async_pipeline()
    return AsyncPipeline(
        steps=[
            AsyncPythonTask("first", first, returns=["value"]),
            AsyncPythonTask("second", second, returns=["answer"]),
        ],
        name="two",
    )


async def main(config: str, run_id: str, mode: str) -> None:
    if os.environ.get("RETRY"):
        run = retry_streaming(pipeline(mode), run_id, configuration_file=config, attribution=True)
    else:
        run = pipeline(mode).execute_streaming(
            run_id=run_id, configuration_file=config, attribution=True
        )
    async for _ in run:
        print(run.last_seq, flush=True)
    print("end", run.run_log.status, flush=True)


if __name__ == "__main__":
    trio.run(main, *sys.argv[1:4])
