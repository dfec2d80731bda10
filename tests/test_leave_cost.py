"""What leaving a run of many live branches costs: work the cancellation path must not do.

Leaving a run (``break``, the end of a ``stream()`` block) cancels every live branch at once,
and each branch unwinds before the next one's ``finally`` runs, so each object a live branch
holds and each step of the unwinding is paid once per branch (W6). These tests pin what was
taken off that path; what the user sees (records, events, exceptions) is tested with the
modules themselves (test_stream, test_parallel, test_groups' users).
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
import trio.testing

from runnable_trio import AsyncPipeline, AsyncPythonTask, ExecutionFailedError, Parallel
from runnable_trio._fanout import _branch_failure
from runnable_trio._groups import first_if_all_cancelled, raise_without_context, single_member

SIZES = (100, 300)

#: Tracked objects a live streaming branch (a Parallel branch whose generator is parked after
#: its first event) may hold beyond a plain Trio task iterating the same generator: one more
#: frame (the task's ``run_alone``; ``_stream``'s stands for the plain task's), the branch's
#: scope, its records and their containers, the ``send_nowait`` the stream's hot loop holds,
#: and the branch's own pipeline (this test builds one per branch). 16 when ``_stream`` also
#: held the sink's ``emit``, needed only when the buffer is full; 15 while such a branch ran
#: through ``run_branch``, ``run_step`` and ``_execute``, three frames.
EXTRA_PER_LIVE_BRANCH = 13


async def _cancelled_group(tasks: int) -> BaseExceptionGroup[BaseException]:
    """The group a nursery of ``tasks`` parked tasks raises when cancelled from outside."""
    caught: list[BaseExceptionGroup[BaseException]] = []
    with trio.CancelScope() as outer:
        try:
            async with trio.open_nursery() as nursery:
                for _ in range(tasks):
                    nursery.start_soon(trio.sleep_forever)
                await trio.testing.wait_all_tasks_blocked()
                outer.cancel()
                await trio.sleep_forever()
        except BaseExceptionGroup as group:
            caught.append(group)
            raise
    (group,) = caught
    assert all(isinstance(exc, trio.Cancelled) for exc in group.exceptions)
    return group


class _Watched(BaseExceptionGroup[BaseException]):
    """A group that records the group operations called on it."""

    calls: list[str]

    def __new__(cls, message: str, exceptions: Any) -> _Watched:
        self = super().__new__(cls, message, exceptions)
        self.calls = []
        return self

    def split(self, *args: Any) -> Any:
        self.calls.append("split")
        return super().split(*args)

    def subgroup(self, *args: Any) -> Any:
        self.calls.append("subgroup")
        return super().subgroup(*args)

    def derive(self, excs: Any) -> Any:
        self.calls.append("derive")
        return BaseExceptionGroup(self.message, excs)


async def test_a_left_fan_outs_cancellations_are_raised_as_the_first_without_splitting() -> None:
    group = await _cancelled_group(20)
    watched = _Watched("cancelled", list(group.exceptions))
    with pytest.raises(trio.Cancelled) as raised:
        raise_without_context(_branch_failure(watched, "fan"))
    assert raised.value is group.exceptions[0]
    assert watched.calls == []  # one pass over the members, no new groups
    assert raised.value.__context__ is None  # not the group it was raised from


async def test_only_a_group_of_cancellations_gives_its_first_member_at_once() -> None:
    group = await _cancelled_group(3)
    error = ValueError("boom")
    mixed = BaseExceptionGroup("mixed", [*group.exceptions, error])
    assert first_if_all_cancelled(mixed) is None  # not only cancellations
    nested = BaseExceptionGroup("nested", [BaseExceptionGroup("inner", list(group.exceptions))])
    assert first_if_all_cancelled(nested) is None  # left to the general case
    assert single_member(nested) is group.exceptions[0]


async def test_a_failure_or_an_interrupt_among_cancellations_still_wins() -> None:
    group = await _cancelled_group(5)
    error = ValueError("boom")
    with pytest.raises(ValueError, match="boom") as failed:
        raise_without_context(
            _branch_failure(BaseExceptionGroup("x", [*group.exceptions, error]), "fan")
        )
    assert failed.value is error
    interrupt = KeyboardInterrupt()
    with pytest.raises(KeyboardInterrupt) as interrupted:
        raise_without_context(
            _branch_failure(BaseExceptionGroup("x", [*group.exceptions, interrupt]), "fan")
        )
    assert interrupted.value is interrupt


def _tracked() -> int:
    gc.collect()
    return len(gc.get_objects())


async def _plain_tasks_parked_in_a_generator(tasks: int) -> int:
    arrived = 0
    release = trio.Event()
    count: list[int] = []

    async def events() -> AsyncIterator[dict[str, str]]:
        nonlocal arrived
        yield {"type": "live"}
        arrived += 1
        if arrived == tasks:
            count.append(_tracked())
            release.set()
        await release.wait()

    async def consume() -> None:
        async for _ in events():
            pass

    async with trio.open_nursery() as nursery:
        for _ in range(tasks):
            nursery.start_soon(consume)
    return count[0]


async def _live_branches_parked(branches: int) -> int:
    arrived = 0
    release = trio.Event()
    count: list[int] = []

    async def live() -> AsyncIterator[dict[str, str]]:
        nonlocal arrived
        yield {"type": "live"}
        arrived += 1
        if arrived == branches:
            count.append(_tracked())
            release.set()
        await release.wait()

    task = AsyncPythonTask(name="live", function=live)
    pipeline = AsyncPipeline(
        [Parallel("fan", branches={f"b{i}": task.as_async_pipeline() for i in range(branches)})]
    )
    async with pipeline.stream() as events:
        async for _ in events:
            pass
    return count[0]


async def test_a_live_streaming_branch_holds_few_more_tracked_objects_than_a_plain_task() -> None:
    def slope(counts: list[int]) -> float:
        return (counts[1] - counts[0]) / (SIZES[1] - SIZES[0])

    plain = slope([await _plain_tasks_parked_in_a_generator(n) for n in SIZES])
    ours = slope([await _live_branches_parked(n) for n in SIZES])
    # Rounded: events the consumer has not taken yet are a fraction of an object per branch.
    assert round(ours - plain) <= EXTRA_PER_LIVE_BRANCH, (
        f"a live streaming branch holds {ours:.2f} tracked objects, a plain task {plain:.2f}"
    )


def _statuses(run_log: Any, fan: str = "fan") -> list[tuple[Any, Any, Any]]:
    """(branch, step, attempt) status of each branch of ``fan``, in order."""
    return [
        (branch.status, branch.steps["live"].status, branch.steps["live"].attempts[-1].status)
        for branch in run_log.steps[fan].branches.values()
    ]


@pytest.mark.parametrize("surface", ["stream", "execute_streaming"])
async def test_a_left_runs_records_are_marked_once_every_branch_has_unwound(surface: str) -> None:
    # Each branch's unwinding goes on until its task ends before the next branch's `finally`
    # runs: the records a left run cut short are marked in one sweep afterwards, not by each
    # step the Cancelled passes through, so no branch's `finally` finds a sibling marked yet.
    from runnable_trio import Status

    branches = 20
    seen_in_finally: list[list[tuple[Any, Any, Any]]] = []
    holder: list[Any] = []

    async def live() -> AsyncIterator[dict[str, str]]:
        yield {"type": "live"}
        try:
            await trio.sleep_forever()
        finally:
            seen_in_finally.append(_statuses(holder[0].run_log))

    task = AsyncPythonTask(name="live", function=live)
    pipeline = AsyncPipeline(
        [Parallel("fan", branches={f"b{i}": task.as_async_pipeline() for i in range(branches)})]
    )
    seen = 0
    if surface == "stream":
        async with pipeline.stream(attribution=True) as events:
            holder.append(events)
            async for event in events:
                seen += event["type"] == "live"
                if seen == branches:
                    break
    else:
        run = pipeline.execute_streaming()
        holder.append(run)
        async for event in run:
            seen += event["type"] == "live"
            if seen == branches:
                break
        await run.aclose()
    processing = [(Status.PROCESSING,) * 3] * branches
    assert seen_in_finally == [processing] * branches
    run_log = holder[0].run_log
    assert run_log.status is Status.CANCELLED
    assert _statuses(run_log) == [(Status.CANCELLED,) * 3] * branches
    assert run_log.steps["fan"].status is Status.CANCELLED
    attempts = [b.steps["live"].attempts[-1] for b in run_log.steps["fan"].branches.values()]
    assert all(attempt.ended_at is not None for attempt in attempts)


async def test_fail_fast_reports_the_siblings_cut_short_before_the_composite_fails() -> None:
    # The sweep at the fan-out's exit, not the siblings' own handlers, marks them: their
    # step.cancelled events still come before the composite's step.failed, and the one
    # error is the failing branch's.
    from runnable_trio import Status

    async def live() -> AsyncIterator[dict[str, str]]:
        yield {"type": "live"}
        await trio.sleep_forever()

    async def boom() -> AsyncIterator[dict[str, str]]:
        await trio.testing.wait_all_tasks_blocked()
        yield {"type": "boom"}
        raise ValueError("boom")

    live_task = AsyncPythonTask(name="live", function=live).as_async_pipeline()
    pipeline = AsyncPipeline(
        [
            Parallel(
                "fan",
                branches={
                    "a": live_task,
                    "b": live_task,
                    "bad": AsyncPythonTask(name="boom", function=boom).as_async_pipeline(),
                },
            )
        ]
    )
    received: list[dict[str, Any]] = []
    with pytest.raises(ExecutionFailedError) as failed:
        async with pipeline.stream(attribution=True) as events:
            async for event in events:
                received.append(event)
    assert isinstance(failed.value.__cause__, ValueError)
    ends = [(e["type"], e["_meta"]["step"]) for e in received if e["type"].startswith("step.")]
    ends = [end for end in ends if end[0] in ("step.cancelled", "step.failed")]
    assert ends[0] == ("step.failed", "fan.bad.boom")
    assert sorted(ends[1:3]) == [("step.cancelled", "fan.a.live"), ("step.cancelled", "fan.b.live")]
    assert ends[3:] == [("step.failed", "fan")]
    run_log = events.run_log
    fan = run_log.steps["fan"]
    assert [fan.branches[k].status for k in ("a", "b", "bad")] == [
        Status.CANCELLED,
        Status.CANCELLED,
        Status.FAIL,
    ]
    for key in ("a", "b"):
        (attempt,) = fan.branches[key].steps["live"].attempts
        assert attempt.status is Status.CANCELLED
        assert attempt.ended_at is not None
