"""Review of compat4: on an asyncio host the event log holds exactly the received events.

Every way out of a stream, at seeded random points, checked against one rule: the run's
event log holds the events the consumer received, numbered on without gaps or repeats, then
one end line, last, with the run's status. Also the fan-out's yield every ``SPAWN_CHUNK``
spawns (fail_fast mid-spawn, cancellation mid-spawn, ``max_concurrency``).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import runnable
import trio
from runnable import AsyncPipeline, AsyncPythonTask, ExecutionFailedError, Map, Parallel

import runnable_trio
from runnable_trio import Status

from .test_compat_asyncio import run_asyncio, until

#: Set by the PostgreSQL test: read the event log from that database instead of the file.
PG: dict[str, str] = {}


def lines_of(run_id: str) -> list[dict[str, Any]]:
    if PG:
        import psycopg

        with psycopg.connect(PG["dsn"]) as conn:
            rows = conn.execute(
                "SELECT line FROM runnable_trio_events WHERE run_id = %s ORDER BY n", (run_id,)
            ).fetchall()
        return [json.loads(line) for (line,) in rows if '"writer"' not in line]
    path = Path(f".run_log_store/{run_id}.events.jsonl")
    text = path.read_text() if path.exists() else ""
    # Complete lines only: read while the run writes, the last one may be cut short.
    lines = text.split("\n")[:-1]
    return [json.loads(line) for line in lines if '"writer"' not in line]


def check_log(
    run_id: str, received: list[Any], status: str | None, *, after: int = 0
) -> list[dict[str, Any]]:
    """The log's lines after ``after`` events: ``received`` numbered on, then one end line."""
    logged = lines_of(run_id)
    events = [line for line in logged if "seq" in line]
    ends = [line for line in logged if "end" in line]
    assert [e["event"] for e in events[after:]] == received
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert len(events) == after + len(received), (len(events), after, len(received))
    assert logged[-1] in ends
    if status is not None:
        assert logged[-1]["end"]["status"] == status
    return logged


def ticks(count: int, *, fail_at: int | None = None, pauses: frozenset[int] = frozenset()):
    async def tick() -> AsyncIterator[dict[str, Any]]:
        for n in range(count):
            if n == fail_at:
                raise ValueError("broke")
            if n in pauses:
                await asyncio.sleep(0)
            yield {"type": "tick", "n": n}

    return AsyncPythonTask("tick", tick).as_async_pipeline()


WAYS = ["end", "failure", "break", "aclose", "dropped", "cancel", "timeout", "raise", "stream"]


async def one_trial(rng: random.Random, run_id: str) -> None:
    way = rng.choice(WAYS)
    count = rng.choice([0, 1, 2, 3, 7, 40, 300, 600])
    buffer_size = rng.choice([1, 2, 3, 16])
    leave = rng.randint(0, count)
    pauses = frozenset(rng.sample(range(max(count, 1)), k=min(count, rng.randint(0, 20))))
    fail_at = rng.randint(0, count) if way == "failure" else None
    pipeline = ticks(count, fail_at=fail_at, pauses=pauses)
    if PG:
        pipeline = _configured(pipeline, PG["config"])
    slow = rng.random() < 0.5
    received: list[Any] = []
    capacity = max(2, buffer_size)

    async def consume(run: Any) -> None:
        async for event in run:
            assert len(run._bridge.events.items) <= capacity
            received.append(event)
            if slow and rng.random() < 0.3:
                await asyncio.sleep(0)
            if len(received) >= leave and way not in ("end", "failure"):
                break

    status: str | None
    if way == "stream":
        async with pipeline.stream(run_id=run_id, event_log=True, buffer_size=buffer_size) as ev:
            await consume(ev)
        status = None  # SUCCESS if the run had ended, else CANCELLED
    elif way == "raise":
        with pytest.raises(KeyError):
            async with pipeline.stream(
                run_id=run_id, event_log=True, buffer_size=buffer_size
            ) as ev:
                await consume(ev)
                raise KeyError("the consumer's own")
        status = None
    elif way in ("cancel", "timeout"):
        run = pipeline.execute_streaming(run_id=run_id, event_log=True, buffer_size=buffer_size)
        turns = rng.randint(0, 60)

        async def task() -> None:
            async with contextlib.aclosing(run):
                async for event in run:
                    received.append(event)
                    if slow:
                        await asyncio.sleep(0)

        consumer = asyncio.create_task(task())
        for _ in range(turns):
            await asyncio.sleep(0)
        if way == "cancel":
            consumer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            if way == "timeout":
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0):
                        await asyncio.shield(consumer)
                consumer.cancel()
            await consumer
        status = None
    else:
        run = pipeline.execute_streaming(run_id=run_id, event_log=True, buffer_size=buffer_size)
        try:
            await consume(run)
        except ExecutionFailedError:
            assert way == "failure"
        if way == "aclose":
            await run.aclose()
        elif way in ("dropped", "break"):
            del run
            gc.collect()
            await until(lambda: any("end" in line for line in lines_of(run_id)))
        status = {"end": "SUCCESS", "failure": "FAIL" if fail_at is not None else None}.get(way)
        if way == "failure" and fail_at == count:
            status = "SUCCESS"
    if way in ("end", "failure"):
        assert len(received) == (count if fail_at is None else min(fail_at, count))
    if not lines_of(run_id):
        assert not received  # a run cancelled before it started leaves no log
        return
    logged = check_log(run_id, received, status)
    if len(received) < count and way not in ("failure",) and status is None:
        # Left before the end: CANCELLED unless every event was produced already.
        assert logged[-1]["end"]["status"] in ("CANCELLED", "SUCCESS")


def test_every_way_out_at_random_points_logs_exactly_the_received_events() -> None:
    rng = random.Random(5)

    async def main() -> None:
        for trial in range(50):
            await one_trial(rng, f"t{trial}")

    run_asyncio(main)


def _configured(pipeline: AsyncPipeline, config: str) -> Any:
    """``pipeline`` with ``configuration_file=config`` passed to its streaming methods."""

    class Configured:
        def execute_streaming(self, **kwargs: Any) -> Any:
            return pipeline.execute_streaming(configuration_file=config, **kwargs)

        def stream(self, **kwargs: Any) -> Any:
            return pipeline.stream(configuration_file=config, **kwargs)

    return Configured()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_postgresql_event_log_at_random_points(pg_config: str, pg_dsn: str) -> None:
    rng = random.Random(17)
    PG.update(dsn=pg_dsn, config=pg_config)
    try:

        async def main() -> None:
            for trial in range(15):
                await one_trial(rng, f"p{trial}")

        run_asyncio(main)
    finally:
        PG.clear()


def test_attributed_events_carry_the_number_they_are_logged_under() -> None:
    async def main() -> list[Any]:
        run = ticks(600).execute_streaming(
            run_id="r1", event_log=True, buffer_size=2, attribution=True
        )
        received = []
        async for event in run:
            received.append(event)
            if len(received) == 333:
                break
        await run.aclose()
        return received

    received = run_asyncio(main)
    logged = check_log("r1", received, "CANCELLED")
    assert [line["event"]["_meta"]["seq"] for line in logged[:-1]] == list(range(1, 334))


def test_cancelled_before_the_first_event_at_random_points() -> None:
    async def main() -> None:
        for turns in range(12):
            run = ticks(50).execute_streaming(run_id=f"r{turns}", event_log=True, buffer_size=1)
            waiting = asyncio.create_task(anext(run))
            for _ in range(turns):
                await asyncio.sleep(0)
            waiting.cancel()
            received = []
            with contextlib.suppress(asyncio.CancelledError):
                received.append(await waiting)
            await run.aclose()
            if lines_of(f"r{turns}"):
                check_log(f"r{turns}", received, None)
            else:
                assert not received

    run_asyncio(main)


def test_a_consumer_parked_when_the_loop_shuts_down() -> None:
    async def main() -> list[Any]:
        gate = asyncio.Event()

        async def wait_forever() -> AsyncIterator[dict[str, Any]]:
            for n in range(5):
                yield {"type": "tick", "n": n}
            await gate.wait()
            yield {"type": "tick", "n": 5}

        pipeline = AsyncPythonTask("tick", wait_forever).as_async_pipeline()
        run = pipeline.execute_streaming(run_id="r1", event_log=True, buffer_size=2)
        received = [await anext(run) for _ in range(5)]

        async def park() -> None:
            received.append(await anext(run))

        asyncio.get_running_loop().create_task(park())  # still parked when main returns
        await until(lambda: run._waiting)
        return received

    received = run_asyncio(main)
    check_log("r1", received, "CANCELLED")


def test_aclose_from_another_task_while_one_waits() -> None:
    gate = asyncio.Event()

    async def three_then_wait() -> AsyncIterator[dict[str, Any]]:
        for n in range(3):
            yield {"type": "tick", "n": n}
        await gate.wait()
        yield {"type": "tick", "n": 3}

    async def main() -> list[Any]:
        pipeline = AsyncPythonTask("tick", three_then_wait).as_async_pipeline()
        run = pipeline.execute_streaming(run_id="r1", event_log=True)
        received = [await anext(run) for _ in range(3)]
        waiting = asyncio.create_task(anext(run))
        await until(lambda: run._waiting)
        await run.aclose()
        with pytest.raises(StopAsyncIteration):
            await waiting
        return received

    received = run_asyncio(main)
    check_log("r1", received, "CANCELLED")


def test_a_consumer_that_never_takes_anything() -> None:
    async def main() -> None:
        run = ticks(50).execute_streaming(run_id="r1", event_log=True, buffer_size=1)
        waiting = asyncio.create_task(anext(run))
        await asyncio.sleep(0)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await run.aclose()

    run_asyncio(main)
    if lines_of("r1"):
        check_log("r1", [], "CANCELLED")


def test_a_consumer_holding_events_in_the_handoff_never_takes_them() -> None:
    # The hand-off full, the run finished: the consumer leaves without taking them.
    async def main() -> None:
        run = ticks(5).execute_streaming(run_id="r1", event_log=True, buffer_size=16)
        first = await anext(run)
        await until(lambda: run._bridge is not None and bool(run._bridge.events.items))
        await until(lambda: run.run_log.status is Status.SUCCESS)
        await run.aclose()
        check_log("r1", [first], "SUCCESS")

    run_asyncio(main)


def test_loop_shutdown_mid_run_logs_the_received_events_then_cancelled() -> None:
    kept: list[Any] = []

    async def main() -> list[Any]:
        run = ticks(10_000).execute_streaming(run_id="r1", event_log=True, buffer_size=2)
        kept.append(run)  # nobody closes it: the loop's shutdown ends the run
        return [await anext(run) for _ in range(7)]

    received = run_asyncio(main)
    check_log("r1", received, "CANCELLED")
    kept.clear()


def test_two_streams_of_two_runs_at_once_on_one_loop() -> None:
    rng = random.Random(7)

    async def main() -> None:
        for trial in range(12):
            runs = [
                ticks(rng.choice([5, 300])).execute_streaming(
                    run_id=f"r{trial}-{i}", event_log=True, buffer_size=rng.choice([1, 2, 16])
                )
                for i in range(2)
            ]
            leave = [rng.randint(0, 300), rng.randint(0, 300)]
            received: list[list[Any]] = [[], []]

            async def consume(run: Any, got: list[Any], leave: int) -> None:
                async for event in run:
                    got.append(event)
                    if rng.random() < 0.5:
                        await asyncio.sleep(0)
                    if len(got) >= leave:
                        break
                await run.aclose()

            await asyncio.gather(*(consume(runs[i], received[i], leave[i]) for i in range(2)))
            for i in range(2):
                check_log(f"r{trial}-{i}", received[i], None)

    run_asyncio(main)


def test_retry_stream_numbers_on_and_replay_matches() -> None:
    rng = random.Random(11)

    async def main() -> None:
        for trial in range(10):
            run_id = f"r{trial}"
            fail_at = rng.randint(0, 400)
            first: list[Any] = []
            run = ticks(400, fail_at=fail_at).execute_streaming(
                run_id=run_id, event_log=True, buffer_size=rng.choice([1, 2, 16])
            )
            with pytest.raises(ExecutionFailedError):
                async for event in run:
                    first.append(event)
            check_log(run_id, first, "FAIL")
            leave = rng.randint(0, 400)
            second: list[Any] = []
            async with runnable.retry_stream(ticks(400), run_id, event_log=True) as events:
                async for event in events:
                    second.append(event)
                    if len(second) >= leave:
                        break
            logged = lines_of(run_id)
            assert [line["event"] for line in logged if "event" in line] == first + second
            assert [line["seq"] for line in logged if "seq" in line] == list(
                range(1, len(first) + len(second) + 1)
            )
            assert "end" in logged[-1]
            replayed = [event async for event in runnable.replay(run_id)]
            assert replayed == first + second

    run_asyncio(main)


def test_a_very_slow_consumer_loses_nothing_and_the_handoff_stays_bounded() -> None:
    async def main() -> list[Any]:
        run = ticks(1000).execute_streaming(run_id="r1", event_log=True, buffer_size=2)
        received = []
        async for event in run:
            assert len(run._bridge.events.items) <= 2
            received.append(event)
            for _ in range(3):
                await asyncio.sleep(0)
        return received

    received = run_asyncio(main)
    assert [e["n"] for e in received] == list(range(1000))
    check_log("r1", received, "SUCCESS")


# --- the Trio host, unchanged ----------------------------------------------------------


def test_the_trio_host_logs_exactly_the_received_events() -> None:
    rng = random.Random(13)

    async def main() -> None:
        for trial in range(40):
            run_id = f"t{trial}"
            count = rng.choice([0, 3, 300, 600])
            leave = rng.randint(0, count)
            fail_at = rng.choice([None, rng.randint(0, count)])

            async def tick(count: int = count, fail_at: int | None = fail_at) -> Any:
                for n in range(count):
                    if n == fail_at:
                        raise ValueError("broke")
                    if n % 7 == 0:
                        await trio.lowlevel.checkpoint()
                    yield {"type": "tick", "n": n}

            pipeline = runnable_trio.AsyncPythonTask("tick", tick).as_async_pipeline()
            received: list[Any] = []
            with contextlib.suppress(runnable_trio.ExecutionFailedError):
                async with pipeline.stream(
                    run_id=run_id, event_log=True, buffer_size=rng.choice([1, 2, 16])
                ) as events:
                    async for event in events:
                        received.append(event)
                        if len(received) >= leave:
                            break
            check_log(run_id, received, None)

    trio.run(main)


# --- the fan-out's yield every SPAWN_CHUNK spawns ---------------------------------------

WIDTH = 1000


def fan(kind: str, fail: int | None, **options: Any) -> Any:
    async def branch(i: int) -> None:
        await asyncio.sleep(0)
        if i == fail:
            raise ValueError(f"branch {i}")
        await asyncio.sleep(0)

    if kind == "map":
        body = AsyncPythonTask("b", branch).as_async_pipeline()
        return AsyncPipeline(
            [Map("fan", branch=body, iterate_on="items", iterate_as="i", **options)]
        )

    def numbered(i: int) -> Any:
        async def one() -> None:
            await branch(i)

        return one

    branches = {
        f"b{i}": AsyncPythonTask("b", numbered(i)).as_async_pipeline() for i in range(WIDTH)
    }
    return AsyncPipeline([Parallel("fan", branches=branches, **options)])


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        ("map", {}),
        ("map", {"max_concurrency": 50}),
        ("map", {"fail_fast": False}),
        ("parallel", {}),  # Parallel has no max_concurrency
        ("parallel", {"fail_fast": False}),
    ],
)
def test_a_wide_fan_out_whose_early_branch_fails_while_spawning(
    kind: str, options: dict[str, Any]
) -> None:
    async def main() -> Any:
        run = fan(kind, 3, **options).execute_streaming(parameters={"items": list(range(WIDTH))})
        with pytest.raises(ExecutionFailedError) as raised:
            [_ async for _ in run]
        return raised.value, run.run_log

    error, run_log = run_asyncio(main)
    assert "branch 3" in str(error)
    assert run_log.status is Status.FAIL
    step = run_log.steps["fan"]
    assert step.status is Status.FAIL
    branches = step.branches
    assert branches["3" if kind == "map" else "b3"].status is Status.FAIL
    assert all(b.status is not Status.PROCESSING for b in branches.values())
    if "max_concurrency" not in options:
        # The yield every SPAWN_CHUNK spawns is no cancellation point: spawning goes on after
        # the failure, and every branch is recorded.
        assert len(branches) == WIDTH
    assert {b.status for k, b in branches.items() if k not in ("3", "b3")} <= {
        Status.SUCCESS,
        Status.CANCELLED,
    }


@pytest.mark.parametrize("kind", ["map", "parallel"])
def test_a_wide_fan_out_cancelled_mid_spawn_leaves_nothing_running(kind: str) -> None:
    started = 0
    finished = 0
    gate = asyncio.Event()

    async def item(i: int) -> None:
        await branch()

    async def branch() -> None:
        nonlocal started, finished
        started += 1
        try:
            await gate.wait()
        finally:
            finished += 1

    if kind == "map":
        pipeline = AsyncPipeline(
            [
                Map(
                    "fan",
                    branch=AsyncPythonTask("b", item).as_async_pipeline(),
                    iterate_on="items",
                    iterate_as="i",
                )
            ]
        )
    else:
        pipeline = AsyncPipeline(
            [
                Parallel(
                    "fan",
                    branches={
                        f"b{i}": AsyncPythonTask("b", branch).as_async_pipeline()
                        for i in range(WIDTH)
                    },
                )
            ]
        )

    async def main() -> Any:
        run = pipeline.execute_streaming(parameters={"items": list(range(WIDTH))})
        consumer = asyncio.create_task(anext(run))
        # The first chunk's branches run on the loop before the rest are spawned.
        await until(lambda: started >= 1)
        assert started < WIDTH
        consumer.cancel()
        with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
            await consumer
        await run.aclose()
        return run.run_log

    run_log = run_asyncio(main)
    assert run_log.status is Status.CANCELLED
    assert started == finished  # none left running
    branches = run_log.steps["fan"].branches
    assert all(b.status is not Status.PROCESSING for b in branches.values())


def test_a_trio_asyncio_loop_logs_exactly_the_received_events() -> None:
    import trio_asyncio

    rng = random.Random(19)

    async def consume(run_id: str, count: int, leave: int, way: str, size: int) -> list[Any]:
        run = ticks(count).execute_streaming(run_id=run_id, event_log=True, buffer_size=size)
        received = []
        async for event in run:
            received.append(event)
            if rng.random() < 0.3:
                await asyncio.sleep(0)
            if len(received) >= leave:
                break
        if way == "aclose":
            await run.aclose()
        else:
            del run
            gc.collect()
            while not any("end" in line for line in lines_of(run_id)):
                await asyncio.sleep(0)
        return received

    async def main() -> None:
        async with trio_asyncio.open_loop():
            for trial in range(15):
                count = rng.choice([0, 3, 300, 600])
                leave = rng.randint(0, count)
                way = rng.choice(["aclose", "dropped"])
                size = rng.choice([1, 2, 16])
                received = await trio_asyncio.aio_as_trio(consume)(
                    f"a{trial}", count, leave, way, size
                )
                check_log(f"a{trial}", received, None)

    trio.run(main)


@pytest.mark.parametrize("max_concurrency", [None, 50])
def test_a_wide_map_on_the_trio_host_whose_early_item_fails(max_concurrency: int | None) -> None:
    async def item(i: int) -> None:
        await trio.lowlevel.checkpoint()
        if i == 3:
            raise ValueError("item 3")
        await trio.lowlevel.checkpoint()

    body = runnable_trio.AsyncPythonTask("b", item).as_async_pipeline()
    pipeline = runnable_trio.AsyncPipeline(
        [
            runnable_trio.Map(
                "fan",
                branch=body,
                iterate_on="items",
                iterate_as="i",
                max_concurrency=max_concurrency,
            )
        ]
    )

    async def main() -> Any:
        with pytest.raises(runnable_trio.ExecutionFailedError, match="item 3"):
            async with pipeline.stream(parameters={"items": list(range(WIDTH))}) as events:
                async for _ in events:
                    pass
        return events.run_log

    run_log = trio.run(main)
    branches = run_log.steps["fan"].branches
    assert branches["3"].status is Status.FAIL
    assert all(b.status is not Status.PROCESSING for b in branches.values())
    if max_concurrency is None:
        assert len(branches) == WIDTH
