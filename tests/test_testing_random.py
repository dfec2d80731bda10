"""Random nested pipelines under random fault plans, left a random way: nothing left behind.

Each trial builds a pipeline (Parallel and Map to depth 3; generator, coroutine and thread
tasks), a fault plan over its task paths (Raise, Delay, Hang, StopAfter, ExtraEvents, on the
first attempt or every one, under retries and timeouts), and leaves the run with
``runnable_trio.testing.leave`` at a random event, so every trial makes the toolkit's checks
(no task alive, every record final in memory and on disk, every call ended) and checks that
every fault of the plan that was reached is in the run log. The seed of a failing trial is in
its message; ``RUNNABLE_TRIO_TRIALS=5000 pytest tests/test_testing_random.py`` runs more.
"""

from __future__ import annotations

import os
import random
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import pytest
import trio
import trio.testing

from runnable_trio import AsyncPipeline, AsyncPythonTask, Map, Parallel, Retry, StepLog
from runnable_trio.testing import (
    FAULTS_KEY,
    Delay,
    ExtraEvents,
    Fault,
    Hang,
    Raise,
    StopAfter,
    Way,
    inject,
    leave,
    ways_for,
)

TRIALS = int(os.environ.get("RUNNABLE_TRIO_TRIALS", "100"))


async def gen(n: int, pause: float) -> AsyncIterator[dict[str, Any]]:
    for i in range(n):
        await trio.sleep(pause)
        yield {"type": "token", "i": i}


async def coro(pause: float) -> None:
    await trio.sleep(pause)


def thread() -> int:
    return 1


class Builder:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.count = 0
        self.tasks: dict[str, str] = {}  # path -> kind

    def name(self) -> str:
        self.count += 1
        return f"s{self.count}"

    def pipeline(self, prefix: str, depth: int) -> AsyncPipeline:
        steps = [self.step(prefix, depth) for _ in range(self.rng.randint(1, 3))]
        return AsyncPipeline(steps)

    def step(self, prefix: str, depth: int) -> Any:
        name = self.name()
        path = f"{prefix}.{name}" if prefix else name
        roll = self.rng.random()
        if depth < 3 and roll < 0.15:
            keys = [f"b{i}" for i in range(self.rng.randint(2, 3))]
            return Parallel(name, {k: self.pipeline(f"{path}.{k}", depth + 1) for k in keys})
        if depth < 3 and roll < 0.3:
            items = self.rng.randint(1, 3)
            self.items = items
            branch = self.pipeline(f"{path}.*", depth + 1)
            return Map(name, "items", "item", branch)
        kind = self.rng.choice(["gen", "gen", "coro", "thread"])
        self.tasks[path] = kind
        retry = Retry(attempts=2, backoff=0.1) if self.rng.random() < 0.3 else None
        pause = self.rng.choice([0.0, 0.01, 0.1])
        if kind == "gen":
            function: Any = _bound(gen, n=self.rng.randint(0, 4), pause=pause)
        elif kind == "coro":
            function = _bound(coro, pause=pause)
        else:
            function = thread
        return AsyncPythonTask(name, function, retry=retry, timeout=5)

    def fault(self, kind: str) -> Fault:
        rng = self.rng
        attempt = rng.choice([None, 1])
        choices: list[Fault] = [
            Raise(ValueError("injected"), attempt=attempt),
            Delay(rng.choice([0.05, 1.0]), attempt=attempt),
            Hang(attempt=attempt),
        ]
        if kind == "gen":
            k = rng.randint(0, 2)
            choices += [
                StopAfter(k, attempt=attempt),
                ExtraEvents([{"type": "extra"}], after_event=k, attempt=attempt),
                Raise(KeyError, after_event=k, attempt=attempt),
                Hang(after_event=k, attempt=attempt),
            ]
        return rng.choice(choices)


def _bound(function: Any, **values: Any) -> Any:
    async def coroutine() -> Any:
        return await function(**values)

    async def generator() -> AsyncIterator[dict[str, Any]]:
        async with aclosing(function(**values)) as inner:
            async for event in inner:
                yield event

    chosen = generator if function is gen else coroutine
    chosen.__qualname__ = chosen.__name__ = function.__name__
    return chosen


def recorded(steps: dict[str, StepLog]) -> list[str]:
    """Every fault the run log says was applied."""
    found = []
    for step in steps.values():
        for attempt in step.attempts:
            found += [f"{step.path}:{f}" for f in attempt.metrics.get(FAULTS_KEY, [])]
        for branch in step.branches.values():
            found += recorded(branch.steps)
    return found


PAIRS = ways_for()


@pytest.mark.parametrize("trial", range(TRIALS))
async def test_random_pipeline_fault_plan_and_way(
    trial: int, runnable_clock: trio.testing.MockClock, runnable_config: str
) -> None:
    seed = random.Random(trial).randrange(2**32)
    rng = random.Random(seed)
    builder = Builder(rng)
    pipeline = builder.pipeline("", 0)
    plan = {path: builder.fault(kind) for path, kind in builder.tasks.items() if rng.random() < 0.4}
    surface, way = rng.choice(PAIRS)
    at = rng.randint(0, 12)
    try:
        with inject(plan) as applied:
            left = await leave(
                pipeline,
                way,
                at,
                surface=surface,  # type: ignore[arg-type]
                parameters={"items": list(range(rng.randint(1, 3)))},
                configuration_file=runnable_config,
            )
        # Every fault applied is in the run log, at its step (a Map item's path included).
        assert sorted(recorded(left.run_log.steps)) == sorted(
            f"{i.path}:{i.fault.describe()}" for i in applied.injected
        )
        if way is Way.END:
            assert not left.early
    except AssertionError as exc:
        exc.add_note(f"trial {trial}, seed {seed}: {surface} {way.value} at {at}, plan {plan}")
        raise
