"""Run log, event log, replay and retry: a run fails, is replayed, then retried to success.

The pipeline fetches a number, transforms it (failing the first time, like a flaky API),
then reports. The first run fails at ``transform``; its run log and event log are read
back; ``retry_streaming`` then runs only ``transform`` and ``report`` again, reusing what
``fetch`` returned, and records the new attempt in the same run log.

Run: ``python examples/run_log_and_retry.py`` (it works in a temporary folder).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from typing import Any

import trio

from runnable_trio import (
    AsyncPipeline,
    AsyncPythonTask,
    ExecutionFailedError,
    list_runs,
    read_run_log,
    replay,
    retry_streaming,
)

calls = {"fetch": 0, "transform": 0}


async def fetch() -> int:
    calls["fetch"] += 1
    return 20


async def transform(value: int) -> AsyncIterator[dict[str, Any]]:
    calls["transform"] += 1
    yield {"type": "status", "message": f"transforming {value}"}
    if calls["transform"] == 1:
        raise ConnectionError("the upstream service hung up")
    yield {"type": "done", "result": value * 2 + 2}


async def report(result: int) -> str:
    return f"the answer is {result}"


pipeline = AsyncPipeline(
    [
        AsyncPythonTask("fetch", fetch, returns=["value"]),
        AsyncPythonTask("transform", transform, returns=["result"]),
        AsyncPythonTask("report", report, returns=["summary"]),
    ],
    name="answer",
)


async def main() -> None:
    try:
        async for event in pipeline.execute_streaming(run_id="answer-1", event_log=True):
            print("live:    ", event)
    except ExecutionFailedError as failure:
        print("failed:  ", failure)

    run_log = read_run_log("answer-1")
    print("record:  ", run_log.status, {name: s.status for name, s in run_log.steps.items()})
    try:
        async for event in replay("answer-1"):
            print("replayed:", event)
    except ExecutionFailedError as failure:
        print("replay ends as the run did:", failure)

    async for event in retry_streaming(pipeline, "answer-1", event_log=True):
        print("retry:   ", event)
    run_log = read_run_log("answer-1")
    attempts = [(a.number, a.status.value) for a in run_log.steps["transform"].attempts]
    print("record:  ", run_log.status, run_log.parameters_out["summary"])
    print("transform attempts:", attempts, "| calls:", calls)
    for run in list_runs():
        print("listed:  ", run.run_id, run.status, run.started_at, run.ended_at)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)
        trio.run(main)
