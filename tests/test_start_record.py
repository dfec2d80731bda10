"""A new run's first record from its template: the text ``run_record`` writes, made once."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from runnable_trio import (
    AsyncPipeline,
    AsyncPythonTask,
    FileRunLogStore,
    Parallel,
    _jsontext,
    _startrecord,
)
from runnable_trio._definition import definition_of
from runnable_trio._runlog import CodeIdentity, RunLog, Status, StepLog
from runnable_trio._startrecord import start_record
from runnable_trio._steplines import run_record


async def _one() -> AsyncIterator[dict[str, Any]]:
    yield {"type": "one"}


def _pipelines() -> list[AsyncPipeline]:
    task = AsyncPythonTask(name="t", function=_one)
    return [
        task.as_async_pipeline(),
        AsyncPipeline([task], name='naïve "quoted" \x00run_id\x00', description="d\n"),
        AsyncPipeline(
            [
                Parallel(
                    "fan", branches={"a": task.as_async_pipeline(), "b": task.as_async_pipeline()}
                )
            ]
        ),
    ]


def _record(pipeline: AsyncPipeline, **fields: Any) -> RunLog:
    definition, definition_hash = definition_of(pipeline)
    fields.setdefault("run_id", "20261207-125500-000001-abcdef1")
    return RunLog(
        pipeline_name=pipeline.name,
        definition=definition,
        definition_hash=definition_hash,
        **fields,
    )


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"tag": 'release \u00e9 "x"'},
        {"tag": "\x00run_id\x00"},  # a marker's text in the record: no template
        {"parameters_in": {"x": 1, "y": "two", "z": [1.5, None], "w": {"k": True}}},
        {"parameters_in": {"\x00parameters_in\x00": None}},
        {"parameters_in": {"big": 10**700, "nan": float("nan")}},
        {"started_at": dt.datetime(2026, 12, 7, 12, 0, 0, tzinfo=dt.UTC)},
        {"started_at": dt.datetime(2026, 12, 7, 12, 0, 0, 5)},  # naive: another text
        {"started_at": dt.datetime(1, 1, 1, 0, 0, 0, 1, tzinfo=dt.UTC)},  # the marker's
        {"run_id": "req-2026-12-07T12:00:00.123"},
    ],
)
def test_a_start_record_is_run_records_text(fields: dict[str, Any]) -> None:
    for pipeline in _pipelines():
        for writer in ("5117-ad83ad0e78e0", "1-000000000000"):
            for _ in range(2):  # made, then from the template
                run_log = _record(pipeline, **fields)
                assert start_record(run_log, writer) == run_record(run_log, writer)


def test_a_record_not_as_a_run_starts_is_run_records() -> None:
    pipeline = _pipelines()[0]
    changes: list[dict[str, Any]] = [
        {"status": Status.SUCCESS},
        {"ended_at": dt.datetime.now(dt.UTC)},
        {"parameters_out": {"x": 1}},
        {"steps": {"t": StepLog("t", "task", "t")}},
        {"step": "t"},
        {"error_type": "ValueError", "error_message": "boom"},
        {"code": CodeIdentity(commit="abc", dirty=False)},
        {"retried_at": [dt.datetime.now(dt.UTC)]},
    ]
    for change in changes:
        start_record(_record(pipeline), "w")  # a template there
        run_log = _record(pipeline, **change)
        assert start_record(run_log, "w") == run_record(run_log, "w"), change


def test_later_runs_of_a_pipeline_start_without_run_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import trio

    calls: list[str] = []

    def counted(run_log: RunLog, writer: str | None, texts: Any = None) -> str:
        calls.append(run_log.run_id)
        return run_record(run_log, writer, texts)

    monkeypatch.setattr(_startrecord, "run_record", counted)
    monkeypatch.setattr(_startrecord, "_templates", {})
    pipeline = AsyncPythonTask(name="t", function=_one).as_async_pipeline()
    store = FileRunLogStore(tmp_path / "runs")

    async def main() -> list[str]:
        ids = []
        for _ in range(3):
            run = pipeline.execute_streaming(store=store)
            async for _ in run:
                pass
            ids.append(run.run_id)
        return ids

    ids = trio.run(main)
    assert calls == ["\x00run_id\x00"]  # the template's record, once
    for run_id in ids:
        run_log = store.load(run_id)
        assert run_log.status is Status.SUCCESS
        assert run_log.run_id == run_id


def test_every_field_of_a_run_record_is_known_to_the_template() -> None:
    # _startrecord keys its templates by some fields, fills in three, and takes the template
    # only where the rest are as a run starts: a field added to RunLog must be taught to it
    # (else one run's value would be baked into the others' first records).
    import attrs

    known = {
        "run_id", "tag", "pipeline_name", "status", "started_at", "ended_at", "parameters_in",
        "parameters_out", "steps", "step", "error_type", "error_message", "definition",
        "definition_hash", "code", "retried_at",
    }  # fmt: skip
    assert {field.name for field in attrs.fields(RunLog)} == known


def test_a_template_made_leaves_the_kept_minutes_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    # Its marker's year-1 time once took the current minute's place in _jsontext: until the
    # next minute, every step's times were written by two time_text calls, not one period
    # (tests/test_item_calls.py failed in the full suite, every other minute).
    monkeypatch.setattr(_startrecord, "_templates", {})
    now = dt.datetime.now(dt.UTC)
    # Three minutes in turn: the last two kept, the current one first (as after a minute's end).
    for minutes in (2, 1, 0):
        _jsontext.time_text(now - dt.timedelta(minutes=minutes))
    assert _jsontext._minute[0] == now.replace(second=0, microsecond=0)
    kept = (_jsontext._minute, _jsontext._before)
    for pipeline in _pipelines():
        run_log = _record(pipeline, started_at=now)
        assert start_record(run_log, "w") == run_record(run_log, "w")
        assert _jsontext._minute is kept[0]
        assert _jsontext._before is kept[1]
    assert all(pieces is not None for _, pieces in _startrecord._templates.values())
    assert len(_startrecord._templates) == len(_pipelines())
