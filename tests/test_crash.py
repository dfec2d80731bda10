"""SIGKILL at random moments: every file of the run parses, no finished step is lost.

A victim process runs a pipeline of plain steps, a Map and a Parallel, streaming events with
the event log on; each step prints its number as it starts (by then every earlier step has
ended and been journaled). The parent kills it at a random moment after a random step has
started, then checks the files. The assertions hold whatever the timing, so the test cannot
flake; the seed is printed on failure. ``RUNNABLE_TRIO_CRASH_TRIALS=n`` runs more trials.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import trio

from runnable_trio import ExecutionFailedError, Status
from runnable_trio._filestore import FileRunLogStore
from runnable_trio._replay import replay

from .helpers import wait_until_dead

TRIALS = int(os.environ.get("RUNNABLE_TRIO_CRASH_TRIALS", "6"))
STEPS = 60

_VICTIM = textwrap.dedent(
    f"""
    import sys, trio
    from runnable_trio import AsyncPipeline, AsyncPythonTask, Map, Parallel

    def started(n):
        sys.stdout.write(f"{{n}}\\n")
        sys.stdout.flush()

    def plain(n):
        async def step(i: int):
            started(n)
            for k in range(3):
                yield {{"type": "tick", "step": n, "k": k}}
                await trio.sleep(0)
            yield {{"type": "done", "i": i + 1}}
        return AsyncPythonTask(f"s{{n}}", step, returns=["i"], stream_end_type="done")

    async def item(x: int, i: int) -> int:
        await trio.sleep(0)
        return x + i

    def composite(n):
        if n % 2:
            inner = AsyncPythonTask("add", item, returns=["y"]).as_async_pipeline()
            return Map(f"s{{n}}", branch=inner, iterate_on="xs", iterate_as="x")
        left = AsyncPythonTask("l", item, returns=["a"]).as_async_pipeline()
        right = AsyncPythonTask("r", item, returns=["b"]).as_async_pipeline()
        return Parallel(f"s{{n}}", branches={{"left": left, "right": right}})

    steps = []
    for n in range({STEPS}):
        steps.append(plain(n) if n % 10 else composite(n))

    async def main():
        async for _ in AsyncPipeline(steps).execute_streaming(
            run_id="victim", parameters={{"i": 0, "x": 1, "xs": [1, 2, 3]}}, event_log=True
        ):
            pass

    trio.run(main)
    """
)


def check_every_file_parses(folder: Path) -> None:
    for path in folder.iterdir():
        if path.name.endswith(".json"):
            json.loads(path.read_text())  # written atomically: whole
        elif path.name.endswith(".jsonl"):
            lines = path.read_bytes().split(b"\n")
            for line in lines[:-2]:  # every line but a last one cut short
                json.loads(line)


def trial(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    folder = tmp_path / str(seed)
    folder.mkdir()
    (folder / "victim.py").write_text(_VICTIM)
    target = rng.randrange(1, STEPS)
    victim = subprocess.Popen([sys.executable, "victim.py"], stdout=subprocess.PIPE, cwd=folder)
    assert victim.stdout is not None
    with victim.stdout:
        last = -1
        while last < target:
            line = victim.stdout.readline()
            assert line, "the victim ended before its kill"
            last = int(line)
        time.sleep(rng.random() * 0.004)  # a random moment of the work that follows
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
    store_folder = folder / ".run_log_store"
    check_every_file_parses(store_folder)
    store = FileRunLogStore(store_folder)
    assert wait_until_dead(store, "victim"), "the dead victim's run is still alive"
    run_log = store.load("victim")
    print(f"seed {seed}: killed after step {last} started, record {run_log.status.value}")
    if run_log.status is Status.PROCESSING:
        # Every step before the last one seen starting ended, and is in the record.
        for n in range(last):
            step = run_log.steps[f"s{n}"]
            assert step.status is Status.SUCCESS, (n, step.status)
    else:
        assert run_log.status is Status.SUCCESS  # it got to its end before the kill
    numbers = []
    for line in (store_folder / "victim.events.jsonl").read_bytes().split(b"\n")[:-2]:
        record = json.loads(line)
        if "seq" in record:
            numbers.append(record["seq"])
    assert numbers == list(range(1, len(numbers) + 1))  # gap-free, in order
    if run_log.status is Status.PROCESSING:
        # A replay of the dead run ends, and says so, after the events that were logged.

        async def replay_all() -> None:
            os.chdir(folder)
            with pytest.raises(ExecutionFailedError, match="its process stopped"):
                async for _ in replay("victim", poll_interval=0.01):
                    pass

        trio.run(replay_all)


@pytest.mark.slow
@pytest.mark.timeout(60 + 30 * TRIALS)
def test_sigkill_at_random_moments_loses_no_finished_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    first = random.randrange(1 << 30)
    for seed in range(first, first + TRIALS):
        try:
            trial(tmp_path, seed)
        except BaseException:
            print(f"crash trial failed with seed {seed}")
            raise
