"""Attacks on ``run_step``'s shortcuts (records made by ``object.__new__`` and the attrs
``__init__``, the retry policy read only once an attempt failed, reuse and resume looked up
only in a retry of a run): a task failing then succeeding, a Map item retried, a timeout
recovered by ``on_failure``, each run left at every one of its events, every way; and the
retry of a failed run left at every event of its own, then retried to its end. After any leave
every record is final, and a retry reuses what succeeded, exactly as it was recorded."""

from __future__ import annotations

from contextlib import aclosing
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from runnable_trio import (
    AsyncPipeline,
    AsyncPythonTask,
    ExecutionFailedError,
    Map,
    Retry,
    Status,
    _task,
    retry_streaming,
)
from runnable_trio._filestore import FileRunLogStore
from runnable_trio.testing import Hang, Raise, assert_final, inject, leave, run_to_end, ways_for


async def value(x: int = 1) -> int:
    return x


async def square(n: int) -> int:
    return n * n


async def last(x: int) -> int:
    return x + 1


def _pipeline() -> AsyncPipeline:
    again = Retry(attempts=3, backoff=1.0)
    return AsyncPipeline(
        [
            AsyncPythonTask("flaky", value, returns=["x"], retry=again),
            Map(
                "each",
                "items",
                "n",
                AsyncPythonTask("sq", square, returns=["s"], retry=again).as_async_pipeline(),
            ),
            AsyncPythonTask(
                "guarded",
                value,
                timeout=1.0,
                on_failure=AsyncPythonTask("rescue", value).as_async_pipeline(),
            ),
        ]
    )


_FAULTS: dict[str, Any] = {
    "flaky": Raise(ConnectionError("reset"), attempt={1}),
    "each.1.sq": Raise(ConnectionError("reset"), attempt={1, 2}),
    "guarded": Hang(),
}
_PARAMETERS = {"items": [1, 2, 3]}


@pytest.fixture(autouse=True)
def _no_fault_hook_after(monkeypatch: pytest.MonkeyPatch) -> None:
    # A plan's first use installs the hook for the process: put back as it was, so the tests
    # that count a step's calls see the run without faults they measure.
    monkeypatch.setattr(_task, "fault_hook", _task.fault_hook)


async def test_a_run_with_retries_left_at_every_event_every_way_leaves_records_final(
    runnable_clock: trio.testing.MockClock,
) -> None:
    pipeline = _pipeline()
    with inject(_FAULTS):
        full = await run_to_end(pipeline, parameters=_PARAMETERS, attribution=True)
    assert full.error is None
    steps = full.run_log.steps
    assert [a.status for a in steps["flaky"].attempts] == [Status.FAIL, Status.SUCCESS]
    assert [a.number for a in steps["flaky"].attempts] == [1, 2]
    item = steps["each"].branches["1"].steps["sq"]
    assert [a.number for a in item.attempts] == [1, 2, 3]
    assert item.attempts[-1].parameters_out == {"s": 4}
    assert steps["guarded"].status is Status.FAIL
    assert steps["guarded"].branches["%on_failure"].status is Status.SUCCESS
    count = len(full.events)
    assert count > 10
    for surface, way in ways_for():
        for at in range(count):
            with inject(_FAULTS):
                # leave() checks: no task of the run alive, every record final (in memory
                # and in the store), every call of a task function ended.
                left = await leave(
                    pipeline,
                    way,
                    at,
                    surface=surface,  # type: ignore[arg-type]
                    parameters=_PARAMETERS,
                    attribution=True,
                )
            for attempts in (left.run_log.steps.get("flaky"),):
                if attempts is not None:
                    assert [a.number for a in attempts.attempts] == list(
                        range(1, len(attempts.attempts) + 1)
                    )


def _failing() -> AsyncPipeline:
    again = Retry(attempts=2, backoff=1.0)
    return AsyncPipeline(
        [
            AsyncPythonTask("flaky", value, returns=["x"], retry=again),
            Map(
                "each",
                "items",
                "n",
                AsyncPythonTask("sq", square, returns=["s"], retry=again).as_async_pipeline(),
            ),
            AsyncPythonTask("last", last, returns=["y"], retry=again),
        ]
    )


async def _failed_run(pipeline: AsyncPipeline, store: FileRunLogStore, run_id: str) -> None:
    faults = {
        "flaky": Raise(ConnectionError("reset"), attempt={1}),
        "each.2.sq": Raise(ValueError("bad item")),  # both attempts
        "last": Raise(ValueError("never reached")),
    }
    with inject(faults), pytest.raises(ExecutionFailedError):
        async with aclosing(
            pipeline.execute_streaming(run_id=run_id, parameters=_PARAMETERS, store=store)
        ) as events:
            async for _ in events:
                pass


async def test_a_retry_left_at_every_event_leaves_records_final_and_reuses_the_successes(
    runnable_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    pipeline = _failing()
    store = FileRunLogStore(tmp_path / "runs")  # records read back, not the live ones
    await _failed_run(pipeline, store, "probe")
    first = store.load("probe")
    assert first.status is Status.FAIL
    flaky = first.steps["flaky"]
    assert [a.status for a in flaky.attempts] == [Status.FAIL, Status.SUCCESS]
    count = 0
    async with aclosing(
        retry_streaming(pipeline, "probe", store=store, attribution=True)
    ) as events:
        async for _ in events:
            count += 1
    assert count > 3
    for at in range(count):
        run_id = f"r{at}"
        await _failed_run(pipeline, store, run_id)
        before = store.load(run_id)
        with trio.CancelScope() as scope:
            seen = 0
            # A buffer of one event: the run waits for this consumer, so it is still going.
            retry = retry_streaming(pipeline, run_id, store=store, attribution=True, buffer_size=1)
            async with aclosing(retry) as events:
                async for _ in events:
                    if seen == at:
                        scope.cancel()  # left at this event: the retry is cancelled
                    seen += 1
        left = store.load(run_id)
        assert_final(left)
        assert left.steps["flaky"].attempts == before.steps["flaky"].attempts  # reused
        # And retried again, to its end (unless it ended before the cancellation came): what
        # succeeded is reused as recorded the first time.
        if left.status is not Status.SUCCESS:
            async with aclosing(
                retry_streaming(pipeline, run_id, store=store, attribution=True)
            ) as events:
                async for _ in events:
                    pass
        done = store.load(run_id)
        assert done.status is Status.SUCCESS, (at, done.status)
        assert done.steps["flaky"].attempts == before.steps["flaky"].attempts
        assert done.steps["each"].branches["1"].steps["sq"].attempts == (
            before.steps["each"].branches["1"].steps["sq"].attempts
        )
        assert done.parameters_out["y"] == 2
        assert_final(done)
