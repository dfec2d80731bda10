"""A failure a step handled is not kept alive by the run: not it, not its frames' locals."""

from __future__ import annotations

import gc
import weakref
from typing import Any

import attrs

from runnable_trio import AsyncPipeline, Map, Parallel, Status
from tests.helpers import run, run_failing, task


class _Marker:
    """Something only a failed branch's frame holds."""


class _Failure(Exception):
    pass


async def _noop() -> None:
    pass


def _raise_with_locals(refs: list[weakref.ref[object]]) -> Any:
    async def process(item: int = 0) -> None:
        marker = _Marker()
        failure = _Failure(f"bad {item}")
        refs.extend([weakref.ref(marker), weakref.ref(failure)])
        raise failure

    return process


def _failing_branch(refs: list[weakref.ref[object]]) -> AsyncPipeline:
    return task("t", _raise_with_locals(refs))


def _count_alive(refs: list[weakref.ref[object]], alive: list[int]) -> AsyncPipeline:
    async def check() -> None:
        gc.collect()
        alive.append(sum(ref() is not None for ref in refs))

    return task("check", check)


async def test_a_recovered_map_frees_its_branches_failures_and_frames() -> None:
    # The recovery runs in a branch of its own, so the pipeline goes on after it.
    refs: list[weakref.ref[object]] = []
    alive: list[int] = []
    recovered = AsyncPipeline(
        [Map("m", "items", "item", _failing_branch(refs), on_failure=task("fix", _noop))]
    )
    pipeline = AsyncPipeline([Parallel("p", {"a": recovered}), *_count_alive(refs, alive).steps])
    log = await run(pipeline, parameters={"items": [1, 2, 3]})
    assert log.status is Status.SUCCESS
    assert log.steps["p"].branches["a"].steps["m"].status is Status.FAIL
    assert refs  # an item failed
    assert alive == [0]


async def test_a_recovered_task_frees_its_failure() -> None:
    refs: list[weakref.ref[object]] = []
    alive: list[int] = []
    recovered = AsyncPipeline(
        [*task("t", _raise_with_locals(refs), on_failure=task("fix", _noop)).steps]
    )
    pipeline = AsyncPipeline([Parallel("p", {"a": recovered}), *_count_alive(refs, alive).steps])
    log = await run(pipeline)
    assert log.status is Status.SUCCESS
    assert len(refs) == 2
    assert alive == [0]


async def test_a_failure_still_names_its_innermost_step() -> None:
    refs: list[weakref.ref[object]] = []
    pipeline = AsyncPipeline([Map("m", "items", "item", _failing_branch(refs))])
    cause, log = await run_failing(pipeline, parameters={"items": [4]})
    assert isinstance(cause, _Failure)
    assert str(cause) == "bad 4"
    assert log.step == "m.0.t"


async def test_an_id_reused_by_a_later_failure_gets_its_own_origin() -> None:
    # The first failure dies before the second is raised, so CPython may give the second the
    # first's id(): the origin recorded for the first must not be reported for the second.
    async def first(item: int) -> None:
        raise _Failure(f"first {item}")

    async def second() -> None:
        raise _Failure("second")

    recovered = AsyncPipeline(
        [Map("m", "items", "item", task("t", first), on_failure=task("fix", _noop))]
    )
    pipeline = AsyncPipeline([Parallel("p", {"a": recovered}), *task("then", second).steps])
    cause, log = await run_failing(pipeline, parameters={"items": [1, 2]})
    assert str(cause) == "second"
    assert log.step == "then"


async def test_a_builtin_failure_frees_the_frames_it_was_raised_in() -> None:
    # A built-in exception cannot be weakly referenced: the frame's locals tell instead.
    refs: list[weakref.ref[object]] = []
    alive: list[int] = []

    async def process() -> None:
        marker = _Marker()
        refs.append(weakref.ref(marker))
        raise ValueError("bad")

    recovered = AsyncPipeline([*task("t", process, on_failure=task("fix", _noop)).steps])
    pipeline = AsyncPipeline([Parallel("p", {"a": recovered}), *_count_alive(refs, alive).steps])
    await run(pipeline)
    assert len(refs) == 1
    assert alive == [0]


@attrs.frozen
class _FrozenFailure(Exception):
    reason: str


async def test_a_frozen_exception_class_still_names_its_step() -> None:
    async def process() -> None:
        raise _FrozenFailure("frozen")

    pipeline = AsyncPipeline([Parallel("p", {"a": task("t", process)})])
    cause, log = await run_failing(pipeline)
    assert isinstance(cause, _FrozenFailure)
    assert log.step == "p.a.t"


async def test_one_exception_raised_in_two_runs_names_each_runs_step() -> None:
    shared = _Failure("shared")

    async def process() -> None:
        raise shared

    _, first = await run_failing(AsyncPipeline([Parallel("p", {"a": task("t", process)})]))
    _, second = await run_failing(AsyncPipeline([Parallel("q", {"b": task("u", process)})]))
    assert (first.step, second.step) == ("p.a.t", "q.b.u")
