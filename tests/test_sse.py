"""SSE encoding of a run's events: ids from sequence numbers, the terminal error event."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio

from runnable_trio import (
    AsyncPythonTask,
    RunConfigurationError,
    SSEStream,
    format_sse,
    parse_last_event_id,
)
from runnable_trio._replay import replay


def parse(messages: list[str]) -> list[dict[str, Any]]:
    """Each message's fields, with ``data`` decoded."""
    parsed = []
    for message in messages:
        assert message.endswith("\n\n")
        fields: dict[str, Any] = {}
        for line in message[:-2].split("\n"):
            name, _, value = line.partition(": ")
            fields[name] = json.loads(value) if name == "data" else value
        parsed.append(fields)
    return parsed


async def words(text: str) -> AsyncIterator[dict[str, Any]]:
    for word in text.split():
        yield {"type": "chunk", "text": word}
        await trio.lowlevel.checkpoint()
    if "crash" in text:
        raise ValueError("model crashed")
    yield {"type": "done", "full_text": text}


PIPELINE = AsyncPythonTask("llm", words, returns=["full_text"]).as_async_pipeline()


def test_format_sse() -> None:
    assert format_sse({"type": "chunk", "text": "a\nb"}, id=3) == (
        'id: 3\ndata: {"type":"chunk","text":"a\\nb"}\n\n'
    )
    assert format_sse({"type": "x"}) == 'data: {"type":"x"}\n\n'
    # What JSON cannot hold is written as the run log and the event log write it.
    assert format_sse({"type": "x", "when": (1,)}) == 'data: {"type":"x","when":[1]}\n\n'
    assert format_sse({"type": "x", "s": {1}}) == 'data: {"type":"x","s":{"$repr":"{1}"}}\n\n'
    with pytest.raises(ValueError, match="line break"):
        format_sse({"type": "x"}, id="1\n2")


@pytest.mark.parametrize(("header", "expected"), [(None, 0), ("", 0), (" 7 ", 7), ("12", 12)])
def test_parse_last_event_id(header: str | None, expected: int) -> None:
    assert parse_last_event_id(header) == expected


@pytest.mark.parametrize("header", ["-1", "abc", "1.5", "run-1:3"])
def test_parse_last_event_id_rejects_what_is_not_a_sequence_number(header: str) -> None:
    with pytest.raises(RunConfigurationError, match="Last-Event-ID"):
        parse_last_event_id(header)


@pytest.mark.parametrize("attribution", [False, True])
async def test_ids_are_the_events_sequence_numbers(attribution: bool) -> None:
    run = PIPELINE.execute_streaming(parameters={"text": "a b c"}, attribution=attribution)
    messages = parse([message async for message in SSEStream(run)])
    user = [m for m in messages if m["data"]["type"] in {"chunk", "done"}]
    assert [m["data"]["type"] for m in user] == ["chunk"] * 3 + ["done"]
    assert [m["id"] for m in messages] == [str(n) for n in range(1, len(messages) + 1)]
    if attribution:  # lifecycle events are numbered too; ids follow _meta.seq
        assert all(str(m["data"]["_meta"]["seq"]) == m["id"] for m in messages)


async def test_a_failed_run_ends_with_an_error_event() -> None:
    run = PIPELINE.execute_streaming(parameters={"text": "one crash"}, run_id="r-7")
    messages = parse([message async for message in SSEStream(run)])
    assert [m.get("id") for m in messages] == ["1", "2", None]
    assert messages[-1]["data"] == {
        "type": "error",
        "error": "run 'r-7' failed at step 'llm': ValueError: model crashed",
        "error_type": "ValueError",
        "error_message": "model crashed",
        "run_id": "r-7",
        "step": "llm",
    }


async def test_ids_count_on_from_after() -> None:
    async def recorded() -> AsyncIterator[dict[str, Any]]:
        for n in range(2):
            yield {"type": "chunk", "n": n}

    messages = parse([message async for message in SSEStream(recorded(), after=5)])
    assert [m["id"] for m in messages] == ["6", "7"]


async def test_aclose_cancels_the_run() -> None:
    release = trio.Event()

    async def endless() -> AsyncIterator[dict[str, Any]]:
        try:
            while True:
                yield {"type": "tick"}
                await trio.sleep(0.01)
        finally:
            release.set()

    run = AsyncPythonTask("endless", endless).as_async_pipeline().execute_streaming()
    body = SSEStream(run)
    assert (await anext(body)).startswith("id: 1\n")
    await body.aclose()
    assert release.is_set()
    assert run.run_log.status == "CANCELLED"
    with pytest.raises(StopAsyncIteration):
        await anext(body)


async def test_resume_from_the_event_log_gives_the_same_messages() -> None:
    run = PIPELINE.execute_streaming(parameters={"text": "a b c d"}, event_log=True)
    live = [message async for message in SSEStream(run)]
    resumed = [message async for message in SSEStream(replay(run.run_id, after=2), after=2)]
    assert resumed == live[2:]
    assert parse(resumed)[0]["id"] == "3"


async def test_resume_of_a_failed_run_ends_with_the_same_error_event() -> None:
    run = PIPELINE.execute_streaming(parameters={"text": "a crash"}, event_log=True)
    live = [message async for message in SSEStream(run)]
    resumed = [message async for message in SSEStream(replay(run.run_id, after=1), after=1)]
    assert resumed == live[1:]
    error = parse(resumed)[-1]["data"]
    assert (error["type"], error["error_type"], error["error_message"]) == (
        "error",
        "ValueError",
        "model crashed",
    )


class Point:
    def __repr__(self) -> str:
        return "Point()"


async def test_live_and_replayed_messages_are_byte_identical_for_any_value() -> None:
    import datetime as dt

    async def odd_values() -> AsyncIterator[dict[str, Any]]:
        yield {"type": "at", "when": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)}
        yield {"type": "object", "value": Point(), "set": {1}, "text": "café"}
        yield {"type": "keys", "pairs": {(1, 2): "tuple key", 3: "int key"}}

    pipeline = AsyncPythonTask("odd", odd_values).as_async_pipeline()
    for attribution in (False, True):
        run = pipeline.execute_streaming(event_log=True, attribution=attribution)
        live = [message async for message in SSEStream(run)]
        replayed = [message async for message in SSEStream(replay(run.run_id))]
        assert replayed == live
    data = [fields["data"] for fields in parse(live) if fields["data"]["type"] in ("at", "object")]
    assert data[0]["when"] == "2026-01-02T03:04:05+00:00"
    assert data[1]["value"] == {"$repr": "Point()"}
    assert data[1]["text"] == "café"
