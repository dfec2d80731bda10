"""The event log and replay: every event with its number, resume after a number, live follow."""

from __future__ import annotations

import contextlib
import gc
import json
import os
import threading
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import pytest
import trio
import trio.lowlevel
import trio.testing
from hypothesis import given, settings

from runnable_trio import (
    AsyncPipeline,
    AsyncPythonTask,
    ExecutionFailedError,
    RunConfigurationError,
    Status,
)
from runnable_trio._eventlog import BATCH, EventLogEnd, EventRecord, decode_line, encode_record
from runnable_trio._replay import replay

from .helpers import collect


def ticker(count: int, fail: bool = False) -> AsyncPipeline:
    async def tick() -> Any:
        for n in range(count):
            yield {"type": "tick", "n": n}
        if fail:
            raise ValueError("broke")

    return AsyncPythonTask("tick", tick).as_async_pipeline()


def raw_lines(run_id: str) -> list[dict[str, Any]]:
    path = Path(f".run_log_store/{run_id}.events.jsonl")
    text = path.read_text() if path.exists() else ""
    return [json.loads(line) for line in text.splitlines()]


def lines(run_id: str) -> list[dict[str, Any]]:
    """The event and end lines (not the writer lines that open each attempt)."""
    return [line for line in raw_lines(run_id) if "writer" not in line]


async def replayed(run_id: str, after: int = 0) -> list[dict[str, Any]]:
    return [event async for event in replay(run_id, after=after)]


async def test_every_event_is_logged_with_its_number_and_the_end() -> None:
    events = await collect(ticker(600), run_id="r1", event_log=True)
    logged = lines("r1")
    assert len(events) == 600 > 2 * BATCH  # several batches
    assert logged[:-1] == [{"seq": n + 1, "event": {"type": "tick", "n": n}} for n in range(600)]
    assert end_lines("r1") == [logged[-1]["end"]]
    assert logged[-1]["end"]["status"] == "SUCCESS"


async def test_attributed_events_are_logged_as_the_consumer_saw_them() -> None:
    events = await collect(ticker(3), run_id="r1", event_log=True, attribution=True)
    logged = [line["event"] for line in lines("r1")[:-1]]
    assert logged == events
    assert [e["_meta"]["seq"] for e in logged] == list(range(1, len(events) + 1))


async def test_no_event_log_unless_asked() -> None:
    await collect(ticker(3), run_id="r1")
    assert lines("r1") == []
    with pytest.raises(RunConfigurationError, match="has no event log"):
        replay("r1")


async def test_replay_after_a_number_gives_exactly_the_later_events() -> None:
    await collect(ticker(10), run_id="r1", event_log=True)
    assert await replayed("r1") == [{"type": "tick", "n": n} for n in range(10)]
    later = replay("r1", after=7)
    assert [event async for event in later] == [{"type": "tick", "n": 7}, {"type": "tick", "n": 8},
                                                {"type": "tick", "n": 9}]  # fmt: skip
    assert later.last_seq == 10
    with pytest.raises(StopAsyncIteration):  # ended, and stays ended
        await later.__anext__()
    assert await replayed("r1", after=10) == []


async def test_replay_of_a_failed_run_ends_with_its_failure() -> None:
    with pytest.raises(ExecutionFailedError):
        await collect(ticker(2, fail=True), run_id="r1", event_log=True)
    seen: list[dict[str, Any]] = []
    with pytest.raises(ExecutionFailedError, match="failed at step 'tick': ValueError: broke"):
        async for event in replay("r1", after=1):
            seen.append(event)
    assert seen == [{"type": "tick", "n": 1}]


# --- the end line: written once, with the run's status, however the consumer is done --------


def end_lines(run_id: str) -> list[dict[str, Any]]:
    return [line["end"] for line in lines(run_id) if "end" in line]


async def ticks_then_interrupt() -> Any:
    for n in range(3):
        yield {"type": "tick", "n": n}
    raise KeyboardInterrupt


def interrupted_ticker() -> AsyncPipeline:
    return AsyncPythonTask("tick", ticks_then_interrupt).as_async_pipeline()


async def wait_for_the_end_line(run_id: str) -> None:
    # Nobody can wait for a dropped iterator's run: the log is closed by a system task, in
    # a worker thread. A generous bound: only a log never closed takes that long.
    with trio.fail_after(30):
        while not end_lines(run_id):
            await trio.sleep(0.01)


async def consume(surface: str, way: str, received: list[Any]) -> None:
    """Consume run r1 on ``surface``, done with it in ``way``; raises what the way raises."""
    pipeline = {"interrupt": interrupted_ticker(), "failure": ticker(5, fail=True)}.get(
        way, ticker(1000)
    )
    if surface == "stream":
        with trio.CancelScope() as scope:
            async with pipeline.stream(run_id="r1", event_log=True) as events:
                async for event in events:
                    received.append(event)
                    if len(received) == 3 and way != "end":
                        if way == "break":
                            break
                        if way == "cancel":
                            scope.cancel()
                        if way == "exception":
                            raise KeyError("the consumer's own")
        return
    run = pipeline.execute_streaming(run_id="r1", event_log=True)
    with trio.CancelScope() as scope:
        async for event in run:
            received.append(event)
            if len(received) == 3 and way != "end":
                if way in ("aclose", "dropped"):
                    break
                if way == "cancel":
                    scope.cancel()
    if way == "aclose":
        await run.aclose()
    elif way == "dropped":
        del run  # no aclose(): StreamingRun.__del__ is all that ends the run
        gc.collect()
        await wait_for_the_end_line("r1")


WAYS_OUT = [
    # (surface, way, the status in the end line, what reaches the consumer)
    ("stream", "end", "SUCCESS", None),
    ("execute_streaming", "end", "SUCCESS", None),
    ("stream", "failure", "FAIL", ExecutionFailedError),
    ("execute_streaming", "failure", "FAIL", ExecutionFailedError),
    ("stream", "break", "CANCELLED", None),
    ("execute_streaming", "aclose", "CANCELLED", None),
    # (An exception out of a bare `async for` over execute_streaming() is this way too.)
    ("execute_streaming", "dropped", "CANCELLED", None),
    ("stream", "cancel", "CANCELLED", None),
    ("execute_streaming", "cancel", "CANCELLED", None),
    ("stream", "exception", "CANCELLED", KeyError),
    ("stream", "interrupt", "CANCELLED", KeyboardInterrupt),
    ("execute_streaming", "interrupt", "CANCELLED", KeyboardInterrupt),
]


@pytest.mark.parametrize(("surface", "way", "status", "raised"), WAYS_OUT)
async def test_every_way_out_writes_one_end_line_after_what_the_consumer_received(
    surface: str, way: str, status: str, raised: type[BaseException] | None
) -> None:
    received: list[Any] = []
    with pytest.raises(raised) if raised is not None else contextlib.nullcontext():
        await consume(surface, way, received)
    assert len(received) == {"end": 1000, "failure": 5}.get(way, 3)
    assert end_lines("r1") == [end_lines("r1")[0]]  # exactly one
    assert end_lines("r1")[0]["status"] == status
    assert lines("r1")[-1] == {"end": end_lines("r1")[0]}  # the last line
    assert [line["event"] for line in lines("r1")[:-1]] == received  # all, and only, those


def test_a_dropped_iterators_end_line_is_written_even_as_trio_ends() -> None:
    async def main() -> None:
        async for event in ticker(1000).execute_streaming(run_id="r1", event_log=True):
            if event["n"] == 2:
                break  # the iterator is dropped here, and the Trio run ends at once

    trio.run(main)
    assert [line["event"]["n"] for line in lines("r1")[:-1]] == [0, 1, 2]
    assert end_lines("r1") == [
        {"status": "CANCELLED", "step": None, "error_type": None, "error_message": None}
    ]


async def test_replay_follows_a_run_that_is_still_going(
    autojump_clock: trio.testing.MockClock,
) -> None:
    release = trio.Event()

    async def slow() -> Any:
        yield {"type": "first"}
        await release.wait()
        yield {"type": "second"}

    pipeline = AsyncPythonTask("slow", slow).as_async_pipeline()
    seen: list[str] = []

    async def follow() -> None:
        async for event in replay("r1", poll_interval=0.5):
            seen.append(event["type"])
            if event["type"] == "first":
                release.set()

    async with pipeline.stream(run_id="r1", event_log=True) as events:
        first = await events.receive()
        assert first == {"type": "first"}
        async with trio.open_nursery() as nursery:
            nursery.start_soon(follow)
            async for _ in events:
                pass
    assert seen == ["first", "second"]


async def test_a_retried_run_numbers_its_events_on(tmp_path: Path) -> None:
    from runnable_trio._rerun import retry_streaming

    calls: list[int] = []

    async def flaky() -> Any:
        calls.append(1)
        yield {"type": "try", "n": len(calls)}
        if len(calls) == 1:
            raise ValueError("first try fails")

    pipeline = AsyncPythonTask("flaky", flaky).as_async_pipeline()
    with pytest.raises(ExecutionFailedError):
        await collect(pipeline, run_id="r1", event_log=True)
    run = retry_streaming(pipeline, "r1", event_log=True)
    assert [event async for event in run] == [{"type": "try", "n": 2}]
    assert [line.get("seq") for line in lines("r1")] == [1, None, 2, None]
    # Each attempt opens with its writer's token (the process lock that says it is alive).
    assert [next(iter(line)) for line in raw_lines("r1")] == [
        "writer", "seq", "end", "writer", "seq", "end",
    ]  # fmt: skip
    assert await replayed("r1", after=1) == [{"type": "try", "n": 2}]


# --- records -------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=6,
)
records = st.builds(
    EventRecord,
    seq=st.integers(1, 10**9),
    event=st.dictionaries(st.text(), json_values, max_size=4),
) | st.builds(
    EventLogEnd,
    status=st.sampled_from(Status),
    step=st.none() | st.text(),
    error_type=st.none() | st.text(),
    error_message=st.none() | st.text(),
)


@settings(max_examples=50, deadline=None)
@given(records)
def test_event_records_round_trip(record: EventRecord | EventLogEnd) -> None:
    line = encode_record(record)
    assert "\n" not in line
    assert decode_line(line) == record


def test_a_line_that_is_not_a_record_is_an_error() -> None:
    with pytest.raises(ValueError, match="not an event log line"):
        decode_line('{"seq": "x"}')


async def test_a_run_prepared_but_never_started_leaves_no_event_log() -> None:
    run = ticker(3).execute_streaming(run_id="r1", event_log=True)
    assert raw_lines("r1")[0].keys() == {"writer"}  # claimed at the call
    del run
    gc.collect()
    with pytest.raises(RunConfigurationError, match="has no event log"):
        replay("r1")  # removed: a run that never ran has no log
    assert await collect(ticker(1), run_id="r1", event_log=True) == [{"type": "tick", "n": 0}]


class _HeldEndLine:
    """Holds the worker thread writing the end line until released (a slow disk, on cue)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from runnable_trio import _eventlog

        self.entered = threading.Event()
        self.release = threading.Event()
        original = _eventlog.append_line

        def append_line(path: Any, data: bytes) -> None:
            if b'"end"' in data and not self.entered.is_set():
                self.entered.set()
                self.release.wait(30)
            original(path, data)

        monkeypatch.setattr(_eventlog, "append_line", append_line)


async def test_closing_the_log_again_while_its_end_line_is_written_waits_for_that_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    held = _HeldEndLine(monkeypatch)
    run = ticker(3).execute_streaming(run_id="r1", event_log=True)
    received: list[Any] = []

    async def consume() -> None:
        async for event in run:  # its end closes the log: the end line, held in the thread
            received.append(event)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consume)
        await trio.to_thread.run_sync(held.entered.wait, 30)
        nursery.start_soon(run.aclose)  # a second way out, while the first is writing
        await trio.testing.wait_all_tasks_blocked()
        held.release.set()
    assert len(received) == 3
    assert end_lines("r1") == [
        {"status": "SUCCESS", "step": None, "error_type": None, "error_message": None}
    ]
    assert [line["seq"] for line in lines("r1") if "seq" in line] == [1, 2, 3]


def test_a_dropped_run_whose_log_cannot_be_closed_is_reported_not_fatal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The safety net of a dropped iterator closes its log in a system task: an error there
    # (the file removed, a full disk, the database gone) must not crash the user's Trio run.
    went_on: list[bool] = []

    async def endless() -> Any:
        n = 0
        while True:
            yield {"type": "tick", "n": n}
            n += 1
            await trio.lowlevel.checkpoint()

    async def main() -> None:
        run = (
            AsyncPythonTask("tick", endless)
            .as_async_pipeline()
            .execute_streaming(run_id="r1", event_log=True)
        )
        async for event in run:
            if event["n"] == 2:
                break
        os.unlink(".run_log_store/r1.events.jsonl")
        del run
        gc.collect()
        went_on.append(True)

    trio.run(main)  # raised TrioInternalError (the system task's FileNotFoundError)
    assert went_on == [True]
    assert "run r1 (its iterator dropped without aclose()): the event log could not be " in (
        caplog.text
    )
