"""The file store's journal line for a step that succeeded is appended by a plain call
(``FileRunLogStore.step_finished_now``), not a coroutine made and awaited per step; a subclass
that overrides ``step_finished`` is awaited as before, and a failed step's line goes through
``step_finished``."""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest
import trio

from runnable_trio import AsyncPipeline, AsyncPythonTask, FileRunLogStore, Map, RunLog, StepLog
from runnable_trio.testing import run_to_end


async def _item(item: int) -> None:
    await trio.lowlevel.checkpoint()


async def _step(x: int) -> int:
    return x + 1


async def _fails(item: int) -> None:
    raise ValueError(f"item {item}")


def _pipeline() -> AsyncPipeline:
    """Two chain steps (run_step) and a Map of plain tasks (run_alone)."""
    return AsyncPipeline(
        [
            AsyncPythonTask("first", _step, returns=["x"]),
            AsyncPythonTask("second", _step, returns=["x"]),
            Map(
                "each",
                iterate_on="items",
                iterate_as="item",
                branch=AsyncPythonTask("each_item", _item).as_async_pipeline(),
            ),
        ]
    )


_PATHS = ["first", "second", "each.0.each_item", "each.1.each_item", "each.2.each_item", "each"]


async def test_a_step_that_succeeded_is_written_without_a_step_finished_coroutine() -> None:
    calls: dict[types.CodeType, int] = {}
    watched = {FileRunLogStore.step_finished.__code__, FileRunLogStore.append_step.__code__}

    def profile(frame: types.FrameType, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code in watched:
            calls[frame.f_code] = calls.get(frame.f_code, 0) + 1

    sys.setprofile(profile)
    try:
        result = await run_to_end(_pipeline(), parameters={"x": 0, "items": [1, 2, 3]})
    finally:
        sys.setprofile(None)
    assert result.cause is None
    assert calls == {FileRunLogStore.append_step.__code__: len(_PATHS)}
    record = FileRunLogStore().load(result.run_log.run_id)
    assert record == result.run_log


class _Reporting(FileRunLogStore):
    """A file store that notes each step it is told of, then writes it."""

    def __init__(self) -> None:
        super().__init__()
        self.told: list[str] = []

    async def step_finished(self, run_log: RunLog, step: StepLog) -> None:
        self.told.append(step.path)
        await trio.lowlevel.checkpoint()
        await super().step_finished(run_log, step)


async def test_a_subclass_overriding_step_finished_is_awaited_for_every_step() -> None:
    store = _Reporting()
    assert store.step_finished_now is None
    assert FileRunLogStore().step_finished_now is not None
    result = await run_to_end(_pipeline(), parameters={"x": 0, "items": [1, 2, 3]}, store=store)
    assert result.cause is None
    assert sorted(store.told) == sorted(_PATHS)
    assert store.load(result.run_log.run_id) == result.run_log


@pytest.mark.parametrize("store", [None, _Reporting], ids=["file", "subclass"])
async def test_a_failed_step_is_written_as_before(store: Any) -> None:
    pipeline = AsyncPipeline(
        [
            Map(
                "each",
                iterate_on="items",
                iterate_as="item",
                branch=AsyncPythonTask("each_item", _fails).as_async_pipeline(),
                fail_fast=False,
            )
        ]
    )
    extra = {} if store is None else {"store": store()}
    result = await run_to_end(pipeline, parameters={"items": [1, 2]}, **extra)
    assert isinstance(result.cause, ExceptionGroup)
    loaded = (extra.get("store") or FileRunLogStore()).load(result.run_log.run_id)
    assert loaded == result.run_log
    branches = loaded.steps["each"].branches
    assert [b.steps["each_item"].error_message for b in branches.values()] == [
        "item 1",
        "item 2",
    ]
