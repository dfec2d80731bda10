"""A branch that is one plain task runs as the task's ``run_alone`` (one frame, not three):
the records, results and errors are those of the general path (``run_branch``), whatever way
the branch ends, on the default (file) store as written and as read back."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import trio
import trio.testing

from runnable_trio import AsyncPipeline, AsyncPythonTask, Map, MemoryRunLogStore, Parallel, metric
from runnable_trio._filestore import FileRunLogStore
from runnable_trio._runlog import run_log_to_dict
from runnable_trio.testing import run_to_end

_TIMES = {"started_at", "ended_at", "run_id", "retried_at"}


def _timeless(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _timeless(v) for k, v in value.items() if k not in _TIMES}
    if isinstance(value, list):
        return [_timeless(item) for item in value]
    return value


def _tasks(pipeline: AsyncPipeline) -> list[AsyncPythonTask]:
    found = []
    for step in pipeline.steps:
        if isinstance(step, AsyncPythonTask):
            found.append(step)
        for branch in getattr(step, "pipelines", lambda: ())():
            found.extend(_tasks(branch))
    return found


async def _both_ways(make: Callable[[], AsyncPipeline], **kwargs: Any) -> tuple[Any, Any, Any, Any]:
    """The outcome and the record (live, and as the file store wrote it) of ``make()``'s
    pipeline run as is and with every task kept on the general path."""
    outcomes = []
    for alone in (True, False):
        pipeline = make()
        tasks = _tasks(pipeline)
        assert tasks
        assert all(task.runs_alone for task in tasks)
        if not alone:
            for task in tasks:
                object.__setattr__(task, "runs_alone", False)
        result = await run_to_end(pipeline, **kwargs)
        cause = result.cause
        error = None if cause is None else (type(cause).__name__, str(cause))
        live = _timeless(run_log_to_dict(result.run_log))
        stored = _timeless(run_log_to_dict(FileRunLogStore().load(result.run_log.run_id)))
        outcomes.append((error, live, stored))
    (error, live, stored), (plain_error, plain_live, plain_stored) = outcomes
    assert live == stored
    assert plain_live == plain_stored
    return error, plain_error, live, plain_live


async def _same(make: Callable[[], AsyncPipeline], **kwargs: Any) -> tuple[Any, Any]:
    error, plain_error, live, plain_live = await _both_ways(make, **kwargs)
    assert error == plain_error
    assert live == plain_live
    return error, live


async def test_a_map_of_returns_and_metrics_records_as_the_general_path(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def square(item: int) -> tuple[int, float]:
        await trio.sleep(0.1 * (3 - item))
        return item * item, item / 2

    def make() -> AsyncPipeline:
        task = AsyncPythonTask("square", square, returns=["sq", metric("half")])
        return AsyncPipeline(
            [Map("each", iterate_on="items", iterate_as="item", branch=task.as_async_pipeline())]
        )

    error, live = await _same(make, parameters={"items": [0, 1, 2]})
    assert error is None
    assert live["status"] == "SUCCESS"
    assert live["parameters_out"]["sq"] == [0, 1, 4]
    item = live["steps"]["each"]["branches"]["2"]["steps"]["square"]
    assert item["attempts"][0]["parameters_in"] == {"item": 2}
    assert item["attempts"][0]["parameters_out"] == {"sq": 4, "half": 1.0}
    assert item["attempts"][0]["metrics"] == {"half": 1.0}


@pytest.mark.parametrize("fail_fast", [True, False])
async def test_a_failing_item_and_its_cancelled_siblings_record_as_the_general_path(
    fail_fast: bool, autojump_clock: trio.testing.MockClock
) -> None:
    async def item_fn(item: int) -> None:
        if item == 1:
            await trio.sleep(1)
            raise ValueError(f"item {item} failed")
        await trio.sleep(5 if item == 2 else 0.5)

    def make() -> AsyncPipeline:
        task = AsyncPythonTask("work", item_fn)
        return AsyncPipeline(
            [
                Map(
                    "each",
                    iterate_on="items",
                    iterate_as="item",
                    branch=task.as_async_pipeline(),
                    fail_fast=fail_fast,
                )
            ]
        )

    error, live = await _same(make, parameters={"items": [0, 1, 2]})
    assert error == ("ValueError", "item 1 failed")
    branches = live["steps"]["each"]["branches"]
    statuses = [branches[key]["status"] for key in "012"]
    assert statuses == ["SUCCESS", "FAIL", "CANCELLED" if fail_fast else "SUCCESS"]
    assert branches["2"]["steps"]["work"]["status"] == statuses[2]


async def test_an_item_without_its_argument_fails_as_on_the_general_path(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def needs(item: int, missing: str) -> None:
        await trio.lowlevel.checkpoint()

    def make() -> AsyncPipeline:
        task = AsyncPythonTask("needs", needs)
        return AsyncPipeline(
            [Map("each", iterate_on="items", iterate_as="item", branch=task.as_async_pipeline())]
        )

    error, _ = await _same(make, parameters={"items": [0]})
    assert error is not None
    assert error[0] == "ParameterError"


async def test_a_parallel_of_plain_tasks_a_thread_and_a_limit_records_as_the_general_path(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def one() -> str:
        await trio.sleep(0.2)
        return "one"

    def two() -> str:
        return "two"

    async def three(item: int) -> int:
        await trio.sleep(0.1)
        return item

    def make() -> AsyncPipeline:
        return AsyncPipeline(
            [
                Parallel(
                    "fan",
                    branches={
                        "a": AsyncPythonTask("one", one, returns=["a"]).as_async_pipeline(),
                        "b": AsyncPythonTask("two", two, returns=["b"]).as_async_pipeline(),
                    },
                ),
                Map(
                    "each",
                    iterate_on="items",
                    iterate_as="item",
                    branch=AsyncPythonTask("three", three, returns=["c"]).as_async_pipeline(),
                    max_concurrency=2,
                ),
            ]
        )

    error, live = await _same(make, parameters={"items": [3, 1, 2]})
    assert error is None
    assert live["parameters_out"] == {"items": [3, 1, 2], "a": "one", "b": "two", "c": [3, 1, 2]}


async def test_a_run_left_while_items_wait_records_them_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def wait(item: int) -> None:
        await trio.sleep_forever()

    async def fail() -> None:
        await trio.sleep(1)
        raise KeyError("boom")

    def make() -> AsyncPipeline:
        return AsyncPipeline(
            [
                Parallel(
                    "fan",
                    branches={
                        "items": AsyncPipeline(
                            [
                                Map(
                                    "each",
                                    iterate_on="items",
                                    iterate_as="item",
                                    branch=AsyncPythonTask("wait", wait).as_async_pipeline(),
                                )
                            ]
                        ),
                        "fail": AsyncPythonTask("fail", fail).as_async_pipeline(),
                    },
                )
            ]
        )

    error, live = await _same(make, parameters={"items": [0, 1]})
    assert error is not None
    assert error[0] == "KeyError"
    each = live["steps"]["fan"]["branches"]["items"]["steps"]["each"]
    for key in "01":
        assert each["branches"][key]["status"] == "CANCELLED"
        step = each["branches"][key]["steps"]["wait"]
        assert step["status"] == "CANCELLED"
        assert step["attempts"][0]["status"] == "CANCELLED"


@pytest.mark.parametrize("memory", [True, False])
async def test_a_running_items_record_is_live_where_the_store_reads_the_live_record(
    memory: bool, autojump_clock: trio.testing.MockClock
) -> None:
    """The memory store's live record is what its readers see: a running item's step is in
    it, PROCESSING, as run_step puts it. The file store's readers see the journal: there the
    record is made as the item ends, and the final record is the same."""
    seen: list[Any] = []
    store = MemoryRunLogStore() if memory else FileRunLogStore()

    async def look(item: int) -> None:
        await trio.sleep(1)
        if item == 0:
            run_id = next(iter(store._runs)) if memory else None  # type: ignore[attr-defined]
            if run_id is not None:
                each = store.load(run_id).steps["each"]
                steps = {key: b.steps["look"] for key, b in each.branches.items()}
                seen.append(
                    {k: (v.status, dict(v.attempts[0].parameters_in)) for k, v in steps.items()}
                )
            else:
                seen.append(None)
        await trio.sleep(1)

    task = AsyncPythonTask("look", look)
    pipeline = AsyncPipeline(
        [Map("each", iterate_on="items", iterate_as="item", branch=task.as_async_pipeline())]
    )
    result = await run_to_end(pipeline, parameters={"items": [0, 1]}, store=store)
    assert result.error is None
    if memory:
        (live,) = seen
        assert live == {"0": ("PROCESSING", {"item": 0}), "1": ("PROCESSING", {"item": 1})}
    final = store.load(result.run_log.run_id).steps["each"]
    for key in "01":
        step = final.branches[key].steps["look"]
        assert step.status == "SUCCESS"
        assert step.attempts[0].parameters_in == {"item": int(key)}


@pytest.mark.parametrize("fail_fast", [True, False])
async def test_a_parallel_of_streams_records_as_the_general_path(
    fail_fast: bool, autojump_clock: trio.testing.MockClock
) -> None:
    """A branch that is one async generator runs as ``run_alone`` too (one frame fewer for
    every event and for the ``Cancelled`` of a run being left): its end event's returns, a
    failing stream and the siblings a failure cuts short record as on the general path."""

    async def counts(n: int) -> AsyncIterator[dict[str, Any]]:
        for i in range(n):
            yield {"type": "tick", "i": i}
        yield {"type": "done", "total": n}

    async def breaks() -> AsyncIterator[dict[str, Any]]:
        yield {"type": "tick"}
        await trio.sleep(1)
        raise ValueError("the stream broke")

    async def waits() -> AsyncIterator[dict[str, Any]]:
        yield {"type": "tick"}
        await trio.sleep(5)

    def make() -> AsyncPipeline:
        return AsyncPipeline(
            [
                Parallel(
                    "fan",
                    branches={
                        "counts": AsyncPythonTask(
                            "counts", counts, returns=["total"]
                        ).as_async_pipeline(),
                        "breaks": AsyncPythonTask("breaks", breaks).as_async_pipeline(),
                        "waits": AsyncPythonTask("waits", waits).as_async_pipeline(),
                    },
                    fail_fast=fail_fast,
                )
            ]
        )

    error, live = await _same(make, parameters={"n": 3})
    assert error == ("ValueError", "the stream broke")
    branches = live["steps"]["fan"]["branches"]
    assert branches["counts"]["status"] == "SUCCESS"
    assert branches["counts"]["steps"]["counts"]["attempts"][0]["parameters_out"] == {"total": 3}
    assert branches["breaks"]["status"] == "FAIL"
    waited = "CANCELLED" if fail_fast else "SUCCESS"
    assert branches["waits"]["status"] == waited
    assert branches["waits"]["steps"]["waits"]["attempts"][0]["status"] == waited


def test_a_stream_with_an_idle_timeout_keeps_the_general_path() -> None:
    async def quiet() -> AsyncIterator[dict[str, Any]]:
        yield {"type": "tick"}

    assert AsyncPythonTask("quiet", quiet).runs_alone
    assert not AsyncPythonTask("quiet", quiet, idle_timeout=1.0).runs_alone
