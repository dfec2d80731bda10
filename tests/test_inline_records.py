"""What a Map item and a Parallel branch do with fewer calls is what they did: records made
with their fields set inline, not by the ``__init__`` attrs wrote (``first_attempt_records``,
``fan_out``'s ``BranchLog``), have every field set as the class sets it (a field added to a
record class and not set there fails here); a task taking no parameter is not bound from its
scope; a Map's fan-in skips comparing an item's names where it assigned none.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs
import pytest
import trio

from runnable_trio import AsyncPipeline, AsyncPythonTask, Map, MemoryRunLogStore, Parallel
from runnable_trio._pipeline import BaseStep
from runnable_trio._runlog import (
    NO_ENTRIES,
    Attempt,
    BranchLog,
    Status,
    StepLog,
    first_attempt_records,
)
from runnable_trio._runner import RunContext
from runnable_trio._scope import Scope
from runnable_trio.testing import run_to_end

_STARTED = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def _fields(record: Any) -> dict[str, Any]:
    """Every field of an attrs record (AttributeError for one never set)."""
    return {field.name: getattr(record, field.name) for field in attrs.fields(type(record))}


@pytest.mark.parametrize("parameters_in", [None, {"item": 3}])
def test_first_attempt_records_are_what_the_classes_make(
    parameters_in: dict[str, Any] | None,
) -> None:
    steps: dict[str, StepLog] = {}
    log, attempt = first_attempt_records(steps, "each", "task", "m.0.each", _STARTED, parameters_in)
    expected_attempt = Attempt(1, _STARTED, parameters_in=dict(parameters_in or {}))
    expected = StepLog("each", "task", "m.0.each", attempts=[expected_attempt])
    assert _fields(attempt) == _fields(expected_attempt)
    assert _fields(log) == _fields(expected)
    assert log == expected
    assert steps == {"each": log}
    assert log.attempts[0] is attempt
    assert log.catalog is NO_ENTRIES
    if parameters_in is not None:
        assert attempt.parameters_in is parameters_in  # kept, not copied
    # Containers of their own, never shared between records.
    other, other_attempt = first_attempt_records({}, "each", "task", "m.1.each", _STARTED, None)
    for name in ("attempts", "branches", "assigned"):
        assert getattr(other, name) is not getattr(log, name)
    for name in ("parameters_in", "parameters_out", "metrics"):
        assert getattr(other_attempt, name) is not getattr(attempt, name)


async def _item(item: int) -> None:
    await trio.lowlevel.checkpoint()


async def _nothing() -> None:
    await trio.lowlevel.checkpoint()


@pytest.mark.parametrize("store", [None, MemoryRunLogStore()], ids=["file", "memory"])
async def test_fan_out_branch_records_are_what_the_class_makes(store: Any) -> None:
    task = AsyncPythonTask("one", _nothing)
    pipeline = AsyncPipeline(
        [
            Parallel(
                "fan", branches={"a": task.as_async_pipeline(), "b": task.as_async_pipeline()}
            ),
            Map(
                "each",
                iterate_on="items",
                iterate_as="item",
                branch=AsyncPythonTask("each_item", _item).as_async_pipeline(),
            ),
        ]
    )
    extra = {} if store is None else {"store": store}
    result = await run_to_end(pipeline, parameters={"items": [1, 2]}, **extra)
    assert result.cause is None
    steps = result.run_log.steps
    for step, keys in (("fan", ["a", "b"]), ("each", ["0", "1"])):
        branches = steps[step].branches
        assert list(branches) == keys
        for key, branch in branches.items():
            assert _fields(branch) == _fields(BranchLog(key, Status.SUCCESS, branch.steps))
            assert list(branch.steps) == (["one"] if step == "fan" else ["each_item"])
    assert steps["fan"].branches["a"].steps is not steps["fan"].branches["b"].steps


async def test_a_task_without_parameters_is_called_with_none_and_records_none() -> None:
    calls: list[tuple[Any, ...]] = []

    async def bare() -> None:
        calls.append(())

    async def rest(**kwargs: Any) -> None:
        calls.append(tuple(sorted(kwargs)))

    pipeline = AsyncPipeline(
        [
            AsyncPythonTask("chain_bare", bare),
            Parallel(
                "fan",
                branches={
                    "bare": AsyncPythonTask("bare", bare).as_async_pipeline(),
                    "rest": AsyncPythonTask("rest", rest).as_async_pipeline(),
                },
            ),
        ]
    )
    result = await run_to_end(pipeline, parameters={"x": 1, "y": 2})
    assert result.cause is None
    assert sorted(calls) == [(), (), ("x", "y")]
    steps = result.run_log.steps
    assert steps["chain_bare"].attempts[0].parameters_in == {}
    branches = steps["fan"].branches
    assert branches["bare"].steps["bare"].attempts[0].parameters_in == {}
    assert branches["rest"].steps["rest"].attempts[0].parameters_in == {"x": 1, "y": 2}
    # Each attempt's own dict, not one shared between steps.
    assert (
        steps["chain_bare"].attempts[0].parameters_in
        is not branches["bare"].steps["bare"].attempts[0].parameters_in
    )


@attrs.frozen(kw_only=True)
class _Unforeseen(BaseStep):
    """A step kind assigning a name it does not declare (``assigned_names`` is empty)."""

    kind = "unforeseen"

    async def _execute(self, ctx: RunContext, scope: Scope, path: str, log: StepLog) -> None:
        item = scope.values["item"]
        if item % 2:
            scope.publish({"odd": item}, log)


async def test_a_map_gives_a_list_of_a_name_no_step_declared_where_some_items_assigned_it() -> None:
    pipeline = AsyncPipeline(
        [
            Map(
                "each",
                iterate_on="items",
                iterate_as="item",
                branch=AsyncPipeline([_Unforeseen(name="maybe")]),
            )
        ]
    )
    result = await run_to_end(pipeline, parameters={"items": [0, 1, 2, 3]})
    assert result.cause is None
    assert result.run_log.steps["each"].assigned == {"odd": [None, 1, None, 3]}
