"""The randomised harness: random nested pipelines, left at a random point in a random way.

:func:`run_trial` builds one random pipeline from a seed (Parallel, Map, Loop and Conditional
nested to depth 3; coroutine, async generator and plain ``def`` tasks that sleep, wait on a
shared event, yield events, fail, or raise ``SystemExit``), runs it on ``execute_streaming()``
or ``stream()``, leaves it in one of the ways a consumer can leave (``break``, ``aclose()``, an
exception in the loop body, ``move_on_after``, cancelling its own scope, a cancel from another
task, or reading every event), and then, still inside the Trio run, checks the guarantees:

- no task of the run is alive (none of the harness's step tasks, no ``runnable_trio`` task);
- every task function that started has left its ``finally``;
- every record is final: the run, its steps, branches and attempts, in memory and on disk;
- the consumer saw only what it may: the run's ``ExecutionFailedError``, its own exception,
  a ``SystemExit`` a task raised (never a Trio internal error).

A failed check raises ``AssertionError`` naming the seed and the trial, so ``run_trial(seed)``
replays it. Times are virtual (the caller runs under a ``MockClock`` with autojump).
"""

from __future__ import annotations

import contextlib
import gc
import random
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import attrs
import trio
import trio.lowlevel

from runnable_trio import (
    AsyncPipeline,
    AsyncPythonTask,
    Conditional,
    ExecutionFailedError,
    Loop,
    Map,
    Parallel,
    Status,
)
from runnable_trio._filestore import FileRunLogStore
from runnable_trio._pipeline import BaseStep
from tests.records import unfinished

__all__ = ["LEAVES", "SURFACES", "TRIO_KIT", "Builder", "Kit", "Tracker", "Trial", "run_trial"]

SURFACES = ("execute_streaming", "stream")
LEAVES = ("full", "break", "aclose", "exception", "move_on_after", "cancel", "external")
STEP_PREFIX = "h_"  # every step name, so a task of a run is known by its name
SLEEPS = (0, 0, 0.001, 0.01, 0.1, 1.0)


class ConsumerError(Exception):
    """What a consumer raises from its loop body when leaving by an exception."""


@attrs.define
class Tracker:
    """What the task functions of one trial did."""

    gate: Any = attrs.Factory(trio.Event)  # set after a random delay; some tasks wait on it
    started: int = 0
    finished: int = 0
    interrupted: int = 0
    running: set[str] = attrs.Factory(set)


@attrs.define
class Trial:
    """One trial: what was built and how it was left, for the failure message."""

    seed: int
    surface: str
    leave: str
    after: int
    attribution: bool
    buffer_size: int
    shape: list[str] = attrs.Factory(list)
    tracker: Tracker = attrs.Factory(Tracker)
    received: int = 0
    outcome: str = ""

    def describe(self) -> str:
        return (
            f"seed={self.seed} surface={self.surface} leave={self.leave} after={self.after} "
            f"attribution={self.attribution} buffer_size={self.buffer_size} "
            f"received={self.received} outcome={self.outcome}\n  pipeline: "
            + " | ".join(self.shape)
        )


@attrs.frozen
class Kit:
    """The step classes and task functions a pipeline is built from (Trio's, or compat's)."""

    pipeline: Any = AsyncPipeline
    task: Any = AsyncPythonTask
    parallel: Any = Parallel
    map: Any = Map
    loop: Any = Loop
    conditional: Any = Conditional
    #: (name, flavour, fate, events, sleeps, waits, tracker) -> the task's function
    function: Callable[..., Callable[..., Any]] = attrs.Factory(lambda: _task_function)
    sleeps: tuple[float, ...] = SLEEPS


class Builder:
    """Random pipelines from one ``random.Random``."""

    def __init__(self, rng: random.Random, trial: Trial, kit: Kit | None = None) -> None:
        self.rng = rng
        self.trial = trial
        self.kit = TRIO_KIT if kit is None else kit
        self.count = 0

    def name(self, kind: str) -> str:
        self.count += 1
        return f"{STEP_PREFIX}{kind}{self.count}"

    def pipeline(self, depth: int) -> AsyncPipeline:
        steps = [self.step(depth) for _ in range(self.rng.randint(1, 3))]
        return self.kit.pipeline(steps)

    def step(self, depth: int) -> BaseStep:
        rng, kit = self.rng, self.kit
        kind = rng.choice(["task"] * 3 + (["parallel", "map", "loop", "cond"] if depth else []))
        if kind == "task":
            return self.task()
        name = self.name(kind)
        self.trial.shape.append(f"{name}(depth {depth})")
        if kind == "parallel":
            branches = {f"b{i}": self.pipeline(depth - 1) for i in range(rng.randint(1, 3))}
            return kit.parallel(name, branches, fail_fast=rng.random() < 0.8)
        if kind == "map":
            return kit.map(
                name,
                "items",
                f"item_{name}",
                self.pipeline(depth - 1),
                max_concurrency=rng.choice([None, None, 1, 2]),
                fail_fast=rng.random() < 0.8,
            )
        if kind == "loop":
            return kit.loop(name, self.pipeline(depth - 1), rng.randint(1, 3), "stop", f"i_{name}")
        return kit.conditional(
            name, "choice", {key: self.pipeline(depth - 1) for key in ("x", "y")}
        )

    def task(self) -> AsyncPythonTask:
        rng, kit = self.rng, self.kit
        name = self.name("t")
        flavour = rng.choice(["coroutine", "generator", "generator", "sync"])
        fate = rng.choices(["ok", "fail", "interrupt"], weights=[90, 9, 1])[0]
        events = rng.randint(0, 4)
        sleeps = [rng.choice(kit.sleeps) for _ in range(events + 1)]
        waits = rng.random() < 0.15
        self.trial.shape.append(f"{name}:{flavour}/{fate}/{events}ev/{'gate' if waits else ''}")
        tracker = self.trial.tracker
        function = kit.function(name, flavour, fate, events, sleeps, waits, tracker)
        timeout = rng.choice([None] * 9 + [0.5])
        task: AsyncPythonTask = kit.task(name, function, timeout=timeout)
        return task


def fail(name: str, fate: str, tracker: Tracker) -> None:
    """What a task function does at its end: nothing, fail, or raise ``SystemExit``."""
    if fate == "fail":
        raise ValueError(f"{name} failed")
    if fate == "interrupt":
        tracker.interrupted += 1
        raise SystemExit(f"{name} interrupted")


def _task_function(
    name: str,
    flavour: str,
    fate: str,
    events: int,
    sleeps: list[float],
    waits: bool,
    tracker: Tracker,
) -> Callable[..., Any]:
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
        await trio.sleep(sleeps[index])

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


TRIO_KIT = Kit()


def _live_run_tasks() -> list[str]:
    """Names of the tasks alive now that belong to a run (the harness's steps, the runs)."""
    found: list[str] = []
    pending = [trio.lowlevel.current_root_task()]
    while pending:
        task = pending.pop()
        if task is None:
            continue
        if task.name.startswith(STEP_PREFIX) or "runnable_trio run" in task.name:
            found.append(task.name)
        for nursery in task.child_nurseries:
            pending.extend(nursery.child_tasks)
    return found


async def run_trial(seed: int, store_folder: str = ".run_log_store") -> Trial:
    """Build, run, leave and check one trial. Raises ``AssertionError`` naming the seed."""
    rng = random.Random(seed)
    trial = Trial(
        seed=seed,
        surface=rng.choice(SURFACES),
        leave=rng.choice(LEAVES),
        after=rng.randint(0, 6),
        attribution=rng.random() < 0.5,
        buffer_size=rng.choice([1, 1, 2, 256]),
    )
    pipeline = Builder(rng, trial).pipeline(depth=3)
    parameters = {"items": list(range(rng.randint(0, 3))), "choice": rng.choice("xy")}
    gate_after = rng.choice(SLEEPS)
    cancel_after = rng.choice(SLEEPS)
    kwargs: dict[str, Any] = {
        "parameters": parameters,
        "attribution": trial.attribution,
        "buffer_size": trial.buffer_size,
    }
    try:
        run_id, run_log, ended = await _drive(trial, pipeline, kwargs, gate_after, cancel_after)
        await _check(trial, run_id, run_log, ended, store_folder)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n  trial: {trial.describe()}") from None
    return trial


async def _drive(
    trial: Trial,
    pipeline: AsyncPipeline,
    kwargs: dict[str, Any],
    gate_after: float,
    cancel_after: float,
) -> tuple[str, Any, trio.Event]:
    """Run the trial's pipeline and leave it; the run's id, record and end event."""
    tracker = trial.tracker

    async def open_gate() -> None:
        await trio.sleep(gate_after)
        tracker.gate.set()

    async def consume(events: Any, scope: trio.CancelScope) -> None:
        async for _ in events:
            trial.received += 1
            if trial.received > trial.after and trial.leave != "full":
                if trial.leave in ("break", "aclose"):
                    break
                if trial.leave == "exception":
                    raise ConsumerError("the consumer's own error")
                if trial.leave == "cancel":
                    scope.cancel()
                    await trio.lowlevel.checkpoint()  # sees the cancellation
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as helpers:
        helpers.start_soon(open_gate)
        try:
            with trio.CancelScope() as scope:
                if trial.leave == "move_on_after":
                    scope.deadline = trio.current_time() + cancel_after
                if trial.leave == "external":
                    helpers.start_soon(_cancel_later, scope, cancel_after)
                if trial.surface == "stream":
                    async with pipeline.stream(**kwargs) as events:
                        prepared = events._run
                        await consume(events, scope)
                else:
                    run = pipeline.execute_streaming(**kwargs)
                    prepared = run._run
                    if trial.leave in ("aclose", "exception", "cancel"):
                        async with contextlib.aclosing(run):
                            await consume(run, scope)
                    else:  # dropped (break), or cancelled inside __anext__
                        await consume(run, scope)
                        del run
            trial.outcome = "cancelled" if scope.cancelled_caught else "left"
        except ExecutionFailedError:
            trial.outcome = "failed"
        except ConsumerError:
            trial.outcome = "consumer error"
        except SystemExit:
            trial.outcome = "interrupt"
        helpers.cancel_scope.cancel()
    return prepared.run_id, prepared.run_log, prepared.ended


async def _cancel_later(scope: trio.CancelScope, delay: float) -> None:
    await trio.sleep(delay)
    scope.cancel()


async def _check(
    trial: Trial, run_id: str, run_log: Any, ended: trio.Event, store_folder: str
) -> None:
    tracker = trial.tracker
    if not ended.is_set():
        # Only a dropped iterator may leave its run ending after the consumer moved on.
        assert trial.surface == "execute_streaming", "stream() left a run going"
        await trio.testing.wait_all_tasks_blocked()
        if not ended.is_set():
            gc.collect()  # the iterator is in a reference cycle: its finaliser cancels the run
        # Virtual time jumps while a plain def runs in its thread: bound the wait in real
        # time instead.
        give_up = time.monotonic() + 30
        while not ended.is_set():
            with trio.move_on_after(1000):
                await ended.wait()
            assert time.monotonic() < give_up, "a dropped run did not end"
    await trio.testing.wait_all_tasks_blocked()
    alive = _live_run_tasks()
    assert not alive, f"tasks of the run still alive: {alive}"
    assert tracker.started == tracker.finished, (
        f"{tracker.started - tracker.finished} task functions did not finish: "
        f"{sorted(tracker.running)}"
    )
    assert run_log.status is not Status.PROCESSING, "the run is PROCESSING"
    assert unfinished(run_log) == [], f"records PROCESSING in memory: {unfinished(run_log)}"
    on_disk = FileRunLogStore(store_folder).load(run_id)
    assert on_disk.status is run_log.status, f"on disk {on_disk.status}, in memory {run_log.status}"
    assert unfinished(on_disk) == [], f"records PROCESSING on disk: {unfinished(on_disk)}"
    deliverable = trial.surface == "stream" or trial.leave in ("full", "aclose", "exception")
    if tracker.interrupted and deliverable:
        # Out of stream()'s block, or from __anext__/aclose(): never lost (a dropped
        # iterator has nobody to give it to).
        assert trial.outcome == "interrupt", "a task's SystemExit did not reach the consumer"
    if trial.outcome == "interrupt":
        assert tracker.interrupted, "the consumer got a SystemExit no task raised"
        assert run_log.status is Status.CANCELLED, f"interrupted run is {run_log.status}"
    if trial.outcome == "left" and trial.leave == "full":
        assert run_log.status is Status.SUCCESS, f"a run read to its end is {run_log.status}"
    if trial.outcome == "failed":
        assert run_log.status is Status.FAIL, f"a failed run is {run_log.status}"
