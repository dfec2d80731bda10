"""Benchmark rows for the PostgreSQL store, against the file store in the same run.

    python bench/pg_store.py [--steps 200] [--repeat 5] [--concurrent 100]

Starts a throwaway PostgreSQL 15 (``tests/pgserver.py``, with ``fsync`` on, as a server
would run) and measures, interleaving file and PostgreSQL runs so drift in the machine's
load falls on both alike:

- per step: a chain of ``--steps`` trivial async tasks, minus a one-step run (the run's fixed
  cost), divided by the steps; each step's record committed before the next starts;
- first event, warm: from ``execute_streaming()`` to the first event of a one-step run;
- aggregate steps/s: ``--concurrent`` runs of ``--steps`` steps at once in one process,
  against one such run alone.

Prints a Markdown table (median of the repeats, and the range).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runnable_trio import AsyncPipeline, AsyncPythonTask
from tests.pgserver import postgres_server


async def step() -> None:
    return None


def chain(n: int) -> AsyncPipeline:
    return AsyncPipeline(steps=[AsyncPythonTask(f"s{i}", step) for i in range(n)])


async def one_run(pipeline: AsyncPipeline, config: str) -> float:
    start = time.perf_counter()
    async for _ in pipeline.execute_streaming(configuration_file=config):
        pass
    return time.perf_counter() - start


async def first_event(config: str) -> float:
    async def talk() -> Any:
        yield {"type": "hello"}

    pipeline = AsyncPythonTask("t", talk).as_async_pipeline()
    start = time.perf_counter()
    run = pipeline.execute_streaming(configuration_file=config)
    async for _ in run:
        elapsed = time.perf_counter() - start
        break
    await run.aclose()
    return elapsed


async def concurrent(pipeline: AsyncPipeline, config: str, runs: int) -> float:
    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(runs):
            nursery.start_soon(one_run, pipeline, config)
    return time.perf_counter() - start


def spread(values: list[float], scale: float, unit: str) -> str:
    median = statistics.median(values) * scale
    return f"{median:.3g} {unit} ({min(values) * scale:.3g}-{max(values) * scale:.3g})"


async def measure(configs: dict[str, str], steps: int, repeat: int, runs: int) -> str:
    long, short = chain(steps), chain(1)
    per_step: dict[str, list[float]] = {name: [] for name in configs}
    first: dict[str, list[float]] = {name: [] for name in configs}
    alone: dict[str, list[float]] = {name: [] for name in configs}
    together: dict[str, list[float]] = {name: [] for name in configs}
    for config in configs.values():  # warm-up: imports, pools, schema
        await one_run(long, config)
        await first_event(config)
    for round_ in range(repeat):
        order = list(configs.items())
        if round_ % 2:
            order.reverse()
        for name, config in order:
            marginal = await one_run(long, config) - await one_run(short, config)
            per_step[name].append(marginal / (steps - 1))
            first[name].append(await first_event(config))
            single = await one_run(long, config)
            alone[name].append(steps / single)
            together[name].append(runs * steps / await concurrent(long, config, runs))
    rows = [
        "| row | store | figure | ratio to the file store |",
        "|---|---|---|---|",
    ]

    def row(label: str, data: dict[str, list[float]], scale: float, unit: str) -> None:
        for name in configs:
            ratio = statistics.median(data[name]) / statistics.median(data["file"])
            rows.append(f"| {label} | {name} | {spread(data[name], scale, unit)} | {ratio:.2f}x |")

    row(f"per step ({steps}-step chain, marginal)", per_step, 1e6, "us")
    row("first event, warm", first, 1e6, "us")
    row(f"steps/s, one run of {steps}", alone, 1, "steps/s")
    row(f"steps/s, {runs} concurrent runs of {steps}", together, 1, "steps/s")
    for name in configs:
        gain = statistics.median(together[name]) / statistics.median(alone[name])
        rows.append(f"| {runs} concurrent / one run | {name} | {gain:.1f}x | |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--concurrent", type=int, default=100)
    args = parser.parse_args()
    with postgres_server(fsync=True) as server, tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        (base / "file.yaml").write_text(
            f"run_log_store:\n  folder: {base / 'runs'}\ncode_identity: false\n"
        )
        (base / "pg.yaml").write_text(
            f"run_log_store:\n  type: postgres\n  dsn: '{server.create_database()}'\n"
            "code_identity: false\n"
        )
        (base / "pg-sync.yaml").write_text(
            f"run_log_store:\n  type: postgres\n  dsn: '{server.create_database()}'\n"
            "  synchronous_commit: true\ncode_identity: false\n"
        )
        configs = {
            "file": str(base / "file.yaml"),
            "postgres": str(base / "pg.yaml"),
            "postgres, synchronous_commit": str(base / "pg-sync.yaml"),
        }
        print(trio.run(measure, configs, args.steps, args.repeat, args.concurrent))


if __name__ == "__main__":
    main()
