"""Per-step overhead of the run log: file store, memory store, plain Trio, in one process.

A pipeline of N trivial async steps (each returns its input + 1, through ``returns``) is run
with the file store (the default: snapshot at start and end, one journal line per step),
with the memory store, and as plain Trio awaiting the same functions in a loop. Overhead per
step is (pipeline time - plain time) / N, the median of several runs, at N = 50 and 500;
the ratio of the two shows whether the cost grows with the run (it must stay within 1.2x).

Run: ``python bench/run_log_overhead.py`` (from the repository root; it works in a temporary
folder). Not a test: timings depend on the machine.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable

import trio

from runnable_trio import AsyncPipeline, AsyncPythonTask

REPEATS = 15


async def step(i: int) -> int:
    return i + 1


def pipeline_of(n: int) -> AsyncPipeline:
    return AsyncPipeline([AsyncPythonTask(f"s{k}", step, returns=["i"]) for k in range(n)])


async def plain(n: int) -> None:
    i = 0
    for _ in range(n):
        await trio.lowlevel.checkpoint()  # the runner's per-step cancellation check
        i = await step(i)


def run_with(pipeline: AsyncPipeline, configuration: str) -> Callable[[], Awaitable[None]]:
    async def go() -> None:
        async for _ in pipeline.execute_streaming(
            configuration_file=configuration, parameters={"i": 0}
        ):
            pass

    return go


async def median_seconds(work: Callable[[], Awaitable[None]]) -> float:
    await work()  # warm up (and describe the pipeline once)
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        await work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


CONFIGURATIONS = {
    "file store": "run_log_store: {type: file}\n",
    "file store, no git": "run_log_store: {type: file}\ncode_identity: false\n",
    "memory store": "run_log_store: {type: memory}\n",
    "memory store, no git": "run_log_store: {type: memory}\ncode_identity: false\n",
}


def write_configurations() -> dict[str, str]:
    files = {}
    for number, (label, text) in enumerate(CONFIGURATIONS.items()):
        files[label] = f"configuration-{number}.yaml"
        with open(files[label], "w", encoding="utf-8") as file:
            file.write(text)
    return files


async def main() -> None:
    configurations = write_configurations()
    per_step: dict[tuple[str, int], float] = {}
    for n in (50, 500):
        pipeline = pipeline_of(n)
        base = await median_seconds(lambda n=n: plain(n))  # type: ignore[misc]
        print(f"N={n}: plain Trio {base / n * 1e6:.2f} us/step")
        for label, configuration in configurations.items():
            total = await median_seconds(run_with(pipeline, configuration))
            per_step[label, n] = (total - base) / n
            print(f"N={n}: {label:22s} {per_step[label, n] * 1e6:8.1f} us/step overhead")
    print()
    for label in configurations:
        small, large = per_step[label, 50], per_step[label, 500]
        print(f"{label:22s} per-step at 500 / at 50 = {large / small:.2f}")
    for n in (50, 500):
        ratio = per_step["file store", n] / per_step["memory store", n]
        print(f"N={n}: file store / memory store overhead = {ratio:.2f}")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)
        trio.run(main)
