"""Figures for the migration app over real HTTP (not a test: timings depend on the machine).

Run from the repository root: ``python -m tests.migration.measure [requests-per-endpoint]``.
Starts the app under uvicorn in a temporary folder and prints, per endpoint, the median time
to the first SSE event and to the end of the body (sequential requests), the same for the
model streamed with no pipeline (``/direct/chat``, the baseline), 20 concurrent requests, and
how long a disconnect takes to reach the run's record (``CANCELLED`` on disk).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import trio

from tests.servers import free_port, wait_until_listening
from tests.test_compat_migration import (
    APP_DIR,
    ENDPOINTS,
    Server,
    check_answer,
    client_for,
    events_of,
)


async def timed(client: httpx.AsyncClient, endpoint: str, prompt: str) -> tuple[float, float]:
    start = time.perf_counter()
    async with events_of(client, endpoint, prompt, language="french") as (_, received):
        events = [await anext(received)]
        first = time.perf_counter() - start
        events += [event async for event in received]
    total = time.perf_counter() - start
    if endpoint != "direct/chat":
        check_answer(endpoint, prompt, events)
    return first, total


async def measure(server: Server, count: int) -> None:
    async with client_for(server) as client:
        await timed(client, "chat", "warm up")
        print(f"{'endpoint':<24}{'first event ms':>16}{'total ms':>10}")
        for endpoint in ["direct/chat", *ENDPOINTS]:
            samples = [await timed(client, endpoint, f"q {n} on {endpoint}") for n in range(count)]
            first = statistics.median(s[0] for s in samples) * 1000
            total = statistics.median(s[1] for s in samples) * 1000
            print(f"{endpoint:<24}{first:>16.1f}{total:>10.1f}")

        results: list[tuple[float, float]] = []

        async def one(number: int) -> None:
            endpoint = ENDPOINTS[number % len(ENDPOINTS)]
            results.append(await timed(client, endpoint, f"question {number} on {endpoint}"))

        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for number in range(20):
                nursery.start_soon(one, number)
        wall = (time.perf_counter() - start) * 1000
        print(f"20 concurrent (mixed): all correct, wall {wall:.0f} ms, "
              f"slowest {max(r[1] for r in results) * 1000:.0f} ms")  # fmt: skip

        delays = []
        for endpoint in ENDPOINTS:
            prompt = f"gate:never-m-{endpoint.replace('/', '-')} never ends"
            async with events_of(client, endpoint, prompt, language="french") as (run_id, got):
                for _ in range(2):
                    await anext(got)
                left = time.perf_counter()
            while (server.run_log(run_id) or {}).get("status") != "CANCELLED":
                await trio.sleep(0.001)
            delays.append((endpoint, (time.perf_counter() - left) * 1000))
        print("disconnect -> CANCELLED on disk:",
              ", ".join(f"{e} {d:.1f} ms" for e, d in delays))  # fmt: skip
        health = (await client.get("/health")).json()
        print(f"health afterwards: {health}")


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    with tempfile.TemporaryDirectory() as folder:
        port = free_port()
        log = Path(folder) / "server.log"
        command = [sys.executable, "-m", "uvicorn", "app:app", "--app-dir", str(APP_DIR),
                   "--log-level", "warning", "--port", str(port)]  # fmt: skip
        with log.open("wb") as output:
            process = subprocess.Popen(command, cwd=folder, stdout=output, stderr=output)
        try:
            wait_until_listening(port, process, log)
            trio.run(measure, Server(f"http://127.0.0.1:{port}", Path(folder)), count)
        finally:
            process.terminate()
            process.wait(10)


if __name__ == "__main__":
    main()
