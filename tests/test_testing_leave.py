"""runnable_trio.testing leave(): every way leaves early, and every check catches what it checks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
import trio.testing

from runnable_trio import (
    AsyncPipeline,
    AsyncPythonTask,
    Map,
    MemoryRunLogStore,
    Parallel,
    RunLog,
    Status,
    StepLog,
)
from runnable_trio.testing import (
    Hang,
    Left,
    Raise,
    Way,
    inject,
    leave,
    leave_every_way,
    run_tasks,
    run_to_end,
    ways_for,
)
from runnable_trio.testing._leave import check_left
from runnable_trio.testing._tracker import CallTracker

finished: list[str] = []


async def tokens(n: int) -> AsyncIterator[dict[str, Any]]:
    try:
        for i in range(n):
            await trio.sleep(0.01)
            yield {"type": "token", "i": i}
        yield {"type": "done", "count": n}
    finally:
        finished.append("tokens")


async def work(count: int) -> int:
    try:
        await trio.sleep(0.05)
        return count + 1
    finally:
        finished.append("work")


def nested() -> AsyncPipeline:
    """A generator, then a Parallel of a generator branch and a Map of generator items."""
    item = AsyncPipeline(
        [
            AsyncPythonTask("gen", tokens, returns=["count"]),
            AsyncPythonTask("add", work, returns=["total"]),
        ]
    )
    return AsyncPipeline(
        [
            AsyncPythonTask("first", tokens, returns=["count"]),
            Parallel(
                "fan",
                {
                    "left": AsyncPipeline([AsyncPythonTask("gen", tokens)]),
                    "right": AsyncPipeline([Map("each", "items", "n", item)]),
                },
            ),
        ]
    )


PARAMETERS = {"n": 3, "items": [2, 3]}


@pytest.fixture(autouse=True)
def _reset() -> None:
    finished.clear()


@pytest.mark.parametrize(("surface", "way"), ways_for())
@pytest.mark.parametrize("at", [0, 4])
async def test_every_way_leaves_early_and_leaves_nothing(
    surface: Any, way: Way, at: int, runnable_clock: trio.testing.MockClock
) -> None:
    full = await run_to_end(nested(), parameters=PARAMETERS)
    assert full.error is None
    seen: list[dict[str, Any]] = []
    finished.clear()
    left = await leave(
        nested(), way, at, surface=surface, parameters=PARAMETERS, on_event=seen.append
    )
    if way is Way.END:
        assert not left.early
        assert left.run_log.status is Status.SUCCESS
        assert len(left.events) == len(full.events)
        return
    assert left.early
    assert left.run_log.status is Status.CANCELLED
    if way is Way.SSE_DISCONNECT:
        assert len(left.frames) == at + 1
        assert left.frames[0].startswith("id: 1\ndata: ")
    elif way in (Way.EXTERNAL_CANCEL, Way.MOVE_ON_AFTER):
        # Both take effect at the consumer's next scheduling point: buffered events may
        # still arrive first.
        assert at + 1 <= len(left.events) < len(full.events)
    else:
        assert len(left.events) == at + 1
    assert seen == left.events
    assert "tokens" in finished  # the generator that was streaming has been closed


async def test_a_run_that_ends_first_is_reported_as_not_left_early() -> None:
    left = await leave(nested(), Way.BREAK, 10_000, parameters=PARAMETERS)
    assert not left.early
    assert left.run_log.status is Status.SUCCESS


async def test_a_run_that_fails_first_keeps_its_error() -> None:
    with inject({"fan.right.each.1.add": Raise(ValueError("item 1"))}):
        left = await leave(nested(), Way.BREAK, 10_000, parameters=PARAMETERS)
    assert not left.early
    assert left.error is not None
    assert str(left.error.__cause__) == "item 1"
    assert left.run_log.status is Status.FAIL


async def test_the_body_exception_reaches_the_test_unchanged() -> None:
    for surface in ("stream", "execute_streaming"):
        left = await leave(nested(), Way.RAISE, 1, surface=surface, parameters=PARAMETERS)
        assert left.early


async def test_leave_every_way_runs_each_way_on_each_surface() -> None:
    results = await leave_every_way(nested(), seed=7, parameters=PARAMETERS)
    assert [(r.surface, r.way) for r in results] == ways_for()
    again = await leave_every_way(nested(), seed=7, parameters=PARAMETERS)
    assert [r.at for r in results] == [r.at for r in again]
    picked = await leave_every_way(nested(), at=[0, 2], ways=["break"], parameters=PARAMETERS)
    assert [(r.surface, r.at) for r in picked] == [
        ("execute_streaming", 0),
        ("execute_streaming", 2),
        ("stream", 0),
        ("stream", 2),
    ]
    with pytest.raises(ValueError, match="no run_id"):
        await leave_every_way(nested(), run_id="x", parameters=PARAMETERS)


async def test_faults_and_leaving_combine(autojump_clock: trio.testing.MockClock) -> None:
    with inject({"fan.left.gen": Hang(after_event=1)}) as plan:
        left = await leave(nested(), Way.MOVE_ON_AFTER, 5, parameters=PARAMETERS)
    assert left.early
    assert plan.injected


def test_unknown_ways_and_surfaces_are_errors() -> None:
    with pytest.raises(ValueError, match="surface must be"):
        ways_for(["asyncio"])
    with pytest.raises(ValueError, match="jump"):
        Way("jump")


async def test_aclose_is_not_a_way_of_leaving_stream() -> None:
    with pytest.raises(ValueError, match="cannot be left by 'aclose'"):
        await leave(nested(), Way.ACLOSE, surface="stream", parameters=PARAMETERS)


# The checks themselves: each must fail on what it checks.


async def test_run_tasks_sees_the_run_while_it_goes() -> None:
    gate = trio.Event()

    async def wait() -> None:
        await gate.wait()

    pipeline = AsyncPipeline([Parallel("p", {"a": AsyncPythonTask("w", wait).as_async_pipeline()})])
    async with pipeline.stream() as events:
        await trio.testing.wait_all_tasks_blocked()
        live = run_tasks(events.run_id)
        assert live
        assert live[0] == f"runnable_trio run {events.run_id}"
        assert len(live) >= 2  # the step's own task under it
        gate.set()
        async for _ in events:
            pass
    assert run_tasks(events.run_id) == []

    run = pipeline.execute_streaming()
    gate = trio.Event()
    it = run.__aiter__()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(it.__anext__)
        await trio.testing.wait_all_tasks_blocked()
        assert run_tasks(run.run_id)  # a system task: found from the root
        nursery.cancel_scope.cancel()
    assert run_tasks(run.run_id) == []


def _left(run_log: RunLog) -> Left:
    return Left("stream", Way.BREAK, 0, run_log, early=True)


async def test_check_fails_for_a_call_not_ended() -> None:
    tracker = CallTracker()
    tracker.enter("fan.left.gen", 1)
    run_log = RunLog(run_id="r1", status=Status.CANCELLED)
    store = MemoryRunLogStore()
    await store.create(run_log)
    with pytest.raises(AssertionError, match=r"call has not ended: fan.left.gen \(attempt 1\)"):
        check_left(_left(run_log), tracker, {"store": store})
    tracker.leave("fan.left.gen", 1)
    check_left(_left(run_log), tracker, {"store": store})


async def test_check_fails_for_a_record_left_processing() -> None:
    run_log = RunLog(run_id="r2", status=Status.CANCELLED)
    step = run_log.steps["s"] = StepLog("s", "task", "s", status=Status.CANCELLED)
    step.new_attempt()
    store = MemoryRunLogStore()
    await store.create(run_log)
    with pytest.raises(AssertionError, match="PROCESSING in memory: step s attempt 1"):
        check_left(_left(run_log), CallTracker(), {"store": store})


async def test_check_fails_for_a_stored_record_left_processing_or_missing() -> None:
    run_log = RunLog(run_id="r3", status=Status.CANCELLED)
    stored = RunLog(run_id="r3")  # what a store that missed the end would hold

    class Stale(MemoryRunLogStore):
        def load(self, run_id: str) -> RunLog:
            return stored

    with pytest.raises(AssertionError, match="PROCESSING in the Stale: run r3"):
        check_left(_left(run_log), CallTracker(), {"store": Stale()})
    with pytest.raises(AssertionError, match="no record of the run in its MemoryRunLogStore"):
        check_left(_left(run_log), CallTracker(), {"store": MemoryRunLogStore()})
    # The default: the file store of the working folder, which has no such run.
    with pytest.raises(AssertionError, match="no record of the run in its FileRunLogStore"):
        check_left(_left(run_log), CallTracker(), {})


async def test_check_fails_for_a_live_task_of_the_run() -> None:
    gate = trio.Event()

    async def wait() -> None:
        await gate.wait()

    async with AsyncPythonTask("w", wait).as_async_pipeline().stream() as events:
        await trio.testing.wait_all_tasks_blocked()
        done = RunLog(run_id=events.run_id, status=Status.CANCELLED)
        with pytest.raises(AssertionError, match="tasks of the run still alive"):
            check_left(_left(done), CallTracker(), {"store": _holding(done)})
        gate.set()


def _holding(run_log: RunLog) -> MemoryRunLogStore:
    store = MemoryRunLogStore()
    store._runs[run_log.run_id] = run_log
    return store


async def test_a_body_exception_that_does_not_arrive_is_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import runnable_trio.testing._leave as module

    async def swallowing(events: Any, left: Left, *args: Any) -> None:
        async for event in events:
            left.events.append(event)
            if len(left.events) > left.at:
                left.early = True
                break  # the exception never gets raised: as if something swallowed it

    monkeypatch.setattr(module, "_consume", swallowing)
    with pytest.raises(AssertionError, match="did not reach the consumer"):
        await leave(nested(), Way.RAISE, 0, surface="stream", parameters=PARAMETERS)


async def test_an_iterator_kept_alive_after_break_is_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import runnable_trio.testing._leave as module

    kept: list[Any] = []
    real = module._consume

    async def keeping(events: Any, *args: Any) -> None:
        kept.append(events)
        await real(events, *args)

    monkeypatch.setattr(module, "_consume", keeping)
    with pytest.raises(AssertionError, match="still referenced"):
        await leave(nested(), Way.BREAK, 0, parameters=PARAMETERS)
    await kept[0].aclose()


def twenty_steps() -> AsyncPipeline:
    """A nested pipeline of 20 steps: a Parallel of three branches, one of them a Map."""
    item = AsyncPipeline(
        [
            AsyncPythonTask("gen", tokens, returns=["count"]),
            AsyncPythonTask("add", work, returns=["total"]),
        ]
    )

    def pair(prefix: str) -> list[Any]:
        return [
            # Only outside the Parallel may a generator assign count (branches must not clash).
            AsyncPythonTask(f"{prefix}_gen", tokens, returns=[] if len(prefix) == 1 else ["count"]),
            AsyncPythonTask(f"{prefix}_add", work, returns=[f"{prefix}_total"]),
        ]

    return AsyncPipeline(
        [
            *pair("head"),
            Parallel(
                "fan",
                {
                    "a": AsyncPipeline(pair("a")),
                    "b": AsyncPipeline([Map("each", "items", "n", item)]),
                    "c": AsyncPipeline(pair("c")),
                },
            ),
            *pair("tail"),
        ]
    )


def count_steps(steps: dict[str, StepLog]) -> int:
    return sum(
        1 + sum(count_steps(b.steps) for b in step.branches.values()) for step in steps.values()
    )


async def test_leave_every_way_on_a_twenty_step_nested_pipeline(
    runnable_clock: trio.testing.MockClock,
) -> None:
    parameters = {"n": 3, "items": [1, 2, 3, 4, 5]}
    full = await run_to_end(twenty_steps(), parameters=parameters)
    assert count_steps(full.run_log.steps) == 20
    results = await leave_every_way(twenty_steps(), seed=3, parameters=parameters)
    assert len(results) == 14
    assert sum(r.early for r in results) >= 10
