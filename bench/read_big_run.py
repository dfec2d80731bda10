"""Reading a big run's record back, against the run's own time.

Runs a Map of N items (max_concurrency=100) with the file store, then reads its record with
``read_run_log`` (the final snapshot) and with the store while the run is still PROCESSING
(the first snapshot plus the journal), and prints each read's time as a fraction of the run's.

    .venv/bin/python bench/read_big_run.py [N]   (default 20000)
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

import trio

from runnable_trio import AsyncPipeline, AsyncPythonTask, Map
from runnable_trio._filestore import FileRunLogStore
from runnable_trio._reader import read_run_log
from runnable_trio.hosting import RunOptions, prepare_run, start_streaming


async def item(x: int) -> int:
    return x


async def run(n: int, store: FileRunLogStore) -> tuple[float, float]:
    branch = AsyncPythonTask("t", item, returns=["y"]).as_async_pipeline()
    pipeline = AsyncPipeline([Map("m", "xs", "x", branch, max_concurrency=100)])
    original = store.finish
    journaled: list[float] = []

    async def finish(run_log: object) -> None:
        began = time.perf_counter()
        store.load("big")  # snapshot + journal: what a reader sees of a live run
        journaled.append(time.perf_counter() - began)
        await original(run_log)  # type: ignore[arg-type]

    store.finish = finish  # type: ignore[method-assign]
    options = RunOptions.check(
        configuration_file="",
        run_id="big",
        tag="",
        parameters_file="",
        log_level="WARNING",
        parameters={"xs": list(range(n))},
        attribution=False,
        buffer_size=None,
        store=store,
    )
    began = time.perf_counter()
    async for _ in start_streaming(prepare_run(pipeline, options)):
        pass
    return time.perf_counter() - began - journaled[0], journaled[0]


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)
        elapsed, journal_read = trio.run(run, n, FileRunLogStore())
        began = time.perf_counter()
        record = read_run_log("big")
        read = time.perf_counter() - began
        assert len(record.steps["m"].branches) == n
    print(f"{n} items: run {elapsed:.2f} s")
    print(f"  read_run_log (final snapshot): {read:.2f} s = {read / elapsed:.3f} of the run")
    print(
        f"  load while PROCESSING (journal): {journal_read:.2f} s = "
        f"{journal_read / elapsed:.3f} of the run"
    )


if __name__ == "__main__":
    main()
