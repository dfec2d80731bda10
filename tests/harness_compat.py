"""The randomised harness's compat leg: the same random pipelines, built from ``runnable``'s
classes with asyncio-flavoured task functions, run and left under ``asyncio.run``.

Each trial is left in one of the ways an asyncio consumer can leave (``break``, ``aclose()``,
an exception in the loop body, ``asyncio.timeout``, the consumer task cancelling itself, a
cancel from another task, reading every event) and then checked, still inside the asyncio
loop: every task function that started has left its ``finally``; every record is final in
memory and on disk; the Trio guest run has ended (no task of the run is alive); the consumer
saw only the run's ``ExecutionFailedError``, its own exception or a cancellation.

Sleeps are real here (asyncio has no virtual clock), so they are kept to milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import math
import random
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import runnable
import trio

from runnable_trio import Status
from runnable_trio._filestore import FileRunLogStore
from tests.harness import LEAVES, SURFACES, Builder, Kit, Tracker, Trial, fail
from tests.records import unfinished

__all__ = ["COMPAT_KIT", "KnownCompatBug", "run_compat_trial"]


class KnownCompatBug(Exception):
    """A trial hit a compat bug already filed (named in the message), not a new one."""


class ConsumerError(Exception):
    """What a consumer raises from its loop body when leaving by an exception."""


def _asyncio_function(
    name: str,
    flavour: str,
    fate: str,
    events: int,
    sleeps: list[float],
    waits: bool,
    tracker: Tracker,
) -> Callable[..., Any]:
    if fate == "interrupt":
        # A task's SystemExit under asyncio is compat's own point (issue 9, point 3), not
        # covered by this leg.
        fate = "fail"
    if flavour == "sync":

        def sync_task() -> None:
            tracker.started += 1
            try:
                fail(name, fate, tracker)
            finally:
                tracker.finished += 1

        return sync_task

    async def pause(index: int) -> None:
        if waits and index == 0:
            await tracker.gate.wait()
        await asyncio.sleep(sleeps[index])

    if flavour == "coroutine":

        async def coroutine_task() -> None:
            tracker.started += 1
            tracker.running.add(name)
            try:
                await pause(0)
                fail(name, fate, tracker)
            finally:
                tracker.running.discard(name)
                tracker.finished += 1

        return coroutine_task

    async def generator_task() -> AsyncIterator[dict[str, Any]]:
        tracker.started += 1
        tracker.running.add(name)
        try:
            for index in range(events):
                await pause(index)
                yield {"type": "tick", "step": name, "n": index}
            await pause(events)
            fail(name, fate, tracker)
        finally:
            tracker.running.discard(name)
            tracker.finished += 1

    return generator_task


COMPAT_KIT = Kit(
    pipeline=runnable.AsyncPipeline,
    task=runnable.AsyncPythonTask,
    parallel=runnable.Parallel,
    map=runnable.Map,
    loop=runnable.Loop,
    conditional=runnable.Conditional,
    function=_asyncio_function,
    sleeps=(0, 0, 0.0005, 0.001, 0.002),
)


def _trio_is_running() -> bool:
    try:
        trio.lowlevel.current_trio_token()
    except RuntimeError:
        return False
    return True


async def _eventually(condition: Callable[[], bool], what: str, seconds: float = 20) -> None:
    give_up = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < give_up, what
        await asyncio.sleep(0.001)


async def run_compat_trial(seed: int, store_folder: str = ".run_log_store") -> Trial:
    """Build, run, leave and check one compat trial (inside a running asyncio loop)."""
    rng = random.Random(seed)
    trial = Trial(
        seed=seed,
        surface=rng.choice(SURFACES),
        leave=rng.choice(LEAVES),
        after=rng.randint(0, 6),
        attribution=rng.random() < 0.5,
        buffer_size=rng.choice([1, 1, 2, 256]),
    )
    trial.tracker.gate = asyncio.Event()
    pipeline = Builder(rng, trial, COMPAT_KIT).pipeline(depth=3)
    parameters = {"items": list(range(rng.randint(0, 3))), "choice": rng.choice("xy")}
    gate_after = rng.choice(COMPAT_KIT.sleeps)
    cancel_after = rng.choice(COMPAT_KIT.sleeps)
    kwargs: dict[str, Any] = {
        "parameters": parameters,
        "attribution": trial.attribution,
        "buffer_size": trial.buffer_size,
    }
    try:
        run_log = await _drive(trial, pipeline, kwargs, gate_after, cancel_after)
        await _check(trial, run_log, store_folder)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n  compat trial: {trial.describe()}") from None
    return trial


async def _drive(
    trial: Trial, pipeline: Any, kwargs: dict[str, Any], gate_after: float, cancel_after: float
) -> Any:
    tracker = trial.tracker
    logs: list[Any] = []

    async def open_gate() -> None:
        await asyncio.sleep(gate_after)
        tracker.gate.set()

    async def consume(events: Any) -> None:
        async for _ in events:
            trial.received += 1
            if trial.received > trial.after and trial.leave != "full":
                if trial.leave in ("break", "aclose"):
                    break
                if trial.leave == "exception":
                    raise ConsumerError("the consumer's own error")
                if trial.leave == "cancel":
                    current = asyncio.current_task()
                    assert current is not None
                    current.cancel()
            await asyncio.sleep(0)

    async def consumer() -> None:
        timeout = asyncio.timeout(cancel_after if trial.leave == "move_on_after" else None)
        async with timeout:
            if trial.surface == "stream":
                async with pipeline.stream(**kwargs) as events:
                    logs.append(events.run_log)
                    await consume(events)
            else:
                run = pipeline.execute_streaming(**kwargs)
                logs.append(run.run_log)
                if trial.leave in ("aclose", "exception", "cancel"):
                    async with contextlib.aclosing(run):
                        await consume(run)
                else:
                    await consume(run)
                    del run

    gate = asyncio.create_task(open_gate())
    task = asyncio.create_task(consumer())
    if trial.leave == "external":
        asyncio.get_running_loop().call_later(cancel_after, task.cancel)
    try:
        await task
        trial.outcome = "left"
    except runnable.ExecutionFailedError:
        trial.outcome = "failed"
    except ConsumerError:
        trial.outcome = "consumer error"
    except (asyncio.CancelledError, TimeoutError):
        trial.outcome = "cancelled"
    gate.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await gate
    del task
    gc.collect()  # a dropped iterator cancels its run from its finaliser
    return logs[0]


async def _check(trial: Trial, run_log: Any, store_folder: str) -> None:
    tracker = trial.tracker
    store = FileRunLogStore(store_folder)
    if trial.outcome == "cancelled" and trial.received == 0:
        with contextlib.suppress(AssertionError):
            await _eventually(lambda: run_log.status is not Status.PROCESSING, "", seconds=0.2)
        if run_log.status is Status.PROCESSING and not store.exists(run_log.run_id):
            raise KnownCompatBug(
                "issue 9 point 2: a consumer cancelled before its run starts leaves "
                f"run_log PROCESSING and writes nothing (seed {trial.seed})"
            )

    def collected(condition: Callable[[], bool]) -> Callable[[], bool]:
        # A dropped iterator (execute_streaming left without aclose()) cancels its run from
        # its finaliser, which runs once the iterator is collected: an exception raised
        # outside the iterator (an asyncio.timeout firing between two events) keeps it in
        # its traceback's frames past the collection _drive makes, so collect while waiting.
        last = -math.inf  # the first wait collects at once

        def check() -> bool:
            nonlocal last
            if condition():
                return True
            if trial.surface == "execute_streaming" and time.monotonic() - last > 0.05:
                gc.collect()  # every 50 ms at most: a collection is not free
                last = time.monotonic()
            return condition()

        return check

    await _eventually(
        collected(lambda: run_log.status is not Status.PROCESSING), "the run is PROCESSING"
    )
    await _eventually(collected(lambda: not _trio_is_running()), "the Trio guest run did not end")
    assert tracker.started == tracker.finished, (
        f"{tracker.started - tracker.finished} task functions did not finish: "
        f"{sorted(tracker.running)}"
    )
    assert unfinished(run_log) == [], f"records PROCESSING in memory: {unfinished(run_log)}"
    on_disk = store.load(run_log.run_id)
    assert on_disk.status is run_log.status, f"on disk {on_disk.status}, in memory {run_log.status}"
    assert unfinished(on_disk) == [], f"records PROCESSING on disk: {unfinished(on_disk)}"
    if trial.outcome == "left" and trial.leave == "full":
        assert run_log.status is Status.SUCCESS, f"a run read to its end is {run_log.status}"
    if trial.outcome == "failed":
        assert run_log.status is Status.FAIL, f"a failed run is {run_log.status}"
