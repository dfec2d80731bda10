"""Per-step cost of OpenTelemetry: W2 (a chain of trivial steps) without it, with the API's
no-op provider, and with the SDK and a batch span processor, as ratios in the same run.

Each measurement is a fresh process (a tracer provider can be set once per process), run in
turn with the others, in rounds with the order rotated, so drift in the machine's load falls
on every mode alike. A process times runs of 1 and K steps alternately (the marginal cost per
step, fixed costs cancelled) with the memory and the file store, and plain Trio awaiting the
same K functions, which has no telemetry and tells how much of the drift is the machine's.

Modes:
- ``none``: opentelemetry never imported (the library's check is ``sys.modules``);
- ``no-op``: ``trace.set_tracer_provider(NoOpTracerProvider())``;
- ``sdk``: the SDK's ``TracerProvider`` with a ``BatchSpanProcessor`` whose exporter drops
  the spans (what the run's own thread pays; an OTLP exporter's encoding happens in the
  processor's thread).

Run: ``python bench/run_otel_overhead.py [--rounds 5] [--steps 500]`` from the repository
root, in the development environment (``pip install -e '.[dev]'``). Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

MODES = ("none", "no-op", "sdk")
STORES = ("memory", "file")


def child(mode: str, steps: int, repeats: int) -> dict[str, float]:
    """In a measurement's process: seconds per step for each store, and plain Trio."""
    if mode == "no-op":
        from opentelemetry import trace

        trace.set_tracer_provider(trace.NoOpTracerProvider())
    elif mode == "sdk":
        from collections.abc import Sequence

        from opentelemetry import trace
        from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            SpanExporter,
            SpanExportResult,
        )

        class Drop(SpanExporter):
            def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
                return SpanExportResult.SUCCESS

        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(Drop()))
        trace.set_tracer_provider(provider)

    import trio

    from runnable_trio import AsyncPipeline, AsyncPythonTask

    async def step(x: int) -> int:
        return x + 1

    def chain(k: int) -> AsyncPipeline:
        return AsyncPipeline([AsyncPythonTask(f"s{i}", step, returns=["x"]) for i in range(k)])

    chains = {1: chain(1), steps: chain(steps)}

    async def timed(length: int, configuration: str) -> float:
        start = time.perf_counter()
        async for _ in chains[length].execute_streaming(configuration, parameters={"x": 0}):
            pass
        return time.perf_counter() - start

    async def plain(length: int) -> float:
        start = time.perf_counter()
        x = 0
        for _ in range(length):
            await trio.lowlevel.checkpoint()
            x = await step(x)
        return time.perf_counter() - start

    async def per_step(run: object) -> float:
        async def go(length: int) -> float:
            return await run(length)  # type: ignore[operator, no-any-return]

        await go(1)
        await go(steps)
        smalls, larges = [], []
        for _ in range(repeats):
            smalls.append(await go(1))
            larges.append(await go(steps))
        return (statistics.median(larges) - statistics.median(smalls)) / (steps - 1)

    for store in STORES:
        with open(f"otel-{store}.yaml", "w", encoding="utf-8") as file:
            file.write(f"run_log_store:\n  type: {store}\ncode_identity: false\n")

    async def main() -> dict[str, float]:
        figures = {"plain": await per_step(plain)}
        for store in STORES:
            configuration = f"otel-{store}.yaml"

            async def run(length: int, configuration: str = configuration) -> float:
                return await timed(length, configuration)

            figures[store] = await per_step(run)
        return figures

    return trio.run(main)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        print(json.dumps(child(options.child, options.steps, options.repeats)))
        return
    results: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
    for number in range(options.rounds):
        order = MODES[number % 3 :] + MODES[: number % 3]
        for mode in order:
            with tempfile.TemporaryDirectory() as folder:
                done = subprocess.run(
                    [
                        *(sys.executable, os.path.abspath(__file__), "--child", mode),
                        *("--steps", str(options.steps), "--repeats", str(options.repeats)),
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                    cwd=folder,
                    timeout=600,
                )
            results[mode].append(json.loads(done.stdout))
        print(f"round {number + 1}/{options.rounds} done", file=sys.stderr)

    def median(mode: str, figure: str) -> float:
        return statistics.median(run[figure] for run in results[mode])

    def normalised(mode: str, figure: str) -> float:
        # Per process, against plain Trio in that same process: the machine's load cancels.
        return statistics.median(run[figure] / run["plain"] for run in results[mode])

    print(f"W2, K={options.steps}: per step, median of {options.rounds} processes per mode")
    print()
    print("| store | figure | " + " | ".join(MODES) + " | no-op / none | sdk / none |")
    print("|---|---|" + "---|" * (len(MODES) + 2))
    for store in STORES:
        raw = [median(mode, store) * 1e6 for mode in MODES]
        ratio = [normalised(mode, store) for mode in MODES]
        for label, figures, unit in (("µs per step", raw, ""), ("÷ plain Trio", ratio, "x")):
            cells = " | ".join(f"{f:.1f}{unit}" for f in figures)
            print(
                f"| {store} | {label} | {cells} "
                f"| {figures[1] / figures[0]:.2f} | {figures[2] / figures[0]:.2f} |"
            )
    plain = ", ".join(f"{mode} {median(mode, 'plain') * 1e6:.2f}" for mode in MODES)
    print()
    print(f"plain Trio, µs per step in the same processes: {plain}")


if __name__ == "__main__":
    main()
