"""The file store's dedicated journal-line writer keeps the generic record schema."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import attrs
import cattrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from runnable_trio import _jsontext as jsontext
from runnable_trio import _recordread as recordread
from runnable_trio import _steplines as steplines
from runnable_trio._filestore import FileRunLogStore, _encode
from runnable_trio._jsoncodec import REPR_KEY, dumps, loads
from runnable_trio._recordread import read_run, read_step
from runnable_trio._runlog import (
    Attempt,
    BranchLog,
    CatalogEntry,
    CodeIdentity,
    RunLog,
    Status,
    StepLog,
    run_log_from_dict,
    run_log_to_dict,
    step_log_from_dict,
    step_log_to_dict,
)
from runnable_trio._steplines import step_line


def _task(path: str, *, failed: bool = False) -> StepLog:
    step = StepLog(path.rpartition(".")[2], "task", path)
    first = step.new_attempt()
    first.parameters_in.update({"x": 1, "t": (1, 2), "é": "ünï", "nested": {"a": [None, 2.5]}})
    first.parameters_in["odd"] = {(1, 2): object, "nan": float("nan"), "when": dt.date(2026, 1, 2)}
    if failed:
        first.end(Status.FAIL, ValueError('bad "quote" and \n newline'))
        step.status = Status.FAIL
        return step
    first.end(Status.SUCCESS)
    first.parameters_out["y"] = 2
    first.metrics["score"] = 0.75
    step.assigned["y"] = 2
    step.status = Status.SUCCESS
    return step


def _records() -> list[StepLog]:
    running = StepLog("live", "task", "live")
    running.new_attempt()  # PROCESSING: ended_at is None
    composite = StepLog("fan", "map", "fan", status=Status.SUCCESS)
    composite.attempts.append(
        Attempt(1, started_at=dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC))
    )
    for key, failed in (("0", False), ("1", True)):
        branch = composite.branches[key] = BranchLog(key, Status.FAIL if failed else Status.SUCCESS)
        branch.steps["t"] = _task(f"fan.{key}.t", failed=failed)
    stored = _task("stored")
    stored.catalog += [
        CatalogEntry("data/a.csv", "ab" * 32, "put"),
        CatalogEntry("%pickled/stored/m.pickle", "cd" * 32, "pickled", parameter="m"),
    ]
    return [StepLog("empty", "stub", "empty"), running, _task("ok"), composite, stored]


@pytest.mark.parametrize("key", ["step", "parent"])
@pytest.mark.parametrize("record", _records(), ids=lambda r: r.path)
def test_the_line_is_the_generic_encoding(record: StepLog, key: str) -> None:
    assert step_line(record, key) == dumps({key: step_log_to_dict(record)})


@pytest.mark.parametrize("record", _records(), ids=lambda r: r.path)
def test_the_generic_reader_reads_the_line_back(record: StepLog) -> None:
    read = step_log_from_dict(loads(step_line(record))["step"])
    assert read == step_log_from_dict(loads(dumps(step_log_to_dict(record))))
    # What JSON keeps as it was comes back equal (a tuple comes back a list, by design).
    assert read.status == record.status
    assert read.catalog == record.catalog
    assert [a.started_at for a in read.attempts] == [a.started_at for a in record.attempts]
    assert [a.error_message for a in read.attempts] == [a.error_message for a in record.attempts]


HOSTILE: dict[str, Any] = {
    "unicode": "é ünï 漢字 🐍 \u2028\u2029 \ud800",
    "control": "".join(map(chr, range(32))) + '\x7f "\\',
    "huge": 10**300,
    "negative": -(10**200),
    "beyond the digit limit": 10**5000,
    "nan": float("nan"),
    "inf": float("inf"),
    "-inf": float("-inf"),
    "nested": {"a": [{"b": (1, {"c": None})}], "é\n": {"": [True, False, 0.1]}},
    "\x00key\u2028": "value",
}


def _hostile() -> StepLog:
    step = StepLog("h\x00é", "task", "h\x00é")
    attempt = step.new_attempt()
    attempt.parameters_in.update(HOSTILE)
    attempt.parameters_out.update(HOSTILE)
    attempt.metrics.update(HOSTILE)
    attempt.end(Status.FAIL, ValueError("\x00\n\t🐍 \ud800"))
    step.assigned.update(HOSTILE)
    step.status = Status.FAIL
    return step


def _same(read: Any, written: Any) -> bool:
    """Equal as JSON keeps it: tuples as lists, NaN equal to itself."""
    if isinstance(written, float) and written != written:
        return isinstance(read, float) and read != read
    if isinstance(written, tuple | list):
        return (
            isinstance(read, list) and len(read) == len(written) and all(map(_same, read, written))
        )
    if isinstance(written, dict):
        return read.keys() == written.keys() and all(_same(read[k], written[k]) for k in written)
    return bool(read == written) and type(read) is type(written)


def test_hostile_values_survive_the_journal_round_trip(tmp_path: Path) -> None:
    step = _hostile()
    assert step_line(step) == dumps({"step": step_log_to_dict(step)})
    store = FileRunLogStore(tmp_path)
    (tmp_path / "r.json").write_bytes(_encode(RunLog("r"), None))
    (tmp_path / "r.journal.jsonl").write_text(step_line(step) + "\n")
    (read,) = store.load("r").steps.values()
    assert read.name == read.path == step.name
    (attempt,) = read.attempts
    assert attempt.error_message == step.attempts[0].error_message
    for values in (attempt.parameters_in, attempt.parameters_out, attempt.metrics, read.assigned):
        beyond = values.pop("beyond the digit limit")
        assert beyond == {REPR_KEY: "<int too large to write>"}
        assert _same(values, {k: v for k, v in HOSTILE.items() if k != "beyond the digit limit"})


def _run_with(steps: list[StepLog]) -> RunLog:
    run_log = RunLog("r", tag="t\x00é", pipeline_name="p", parameters_in=dict(HOSTILE))
    run_log.steps.update((step.name, step) for step in steps)
    run_log.definition = {"steps": {"a": {"kind": "task"}}, "name": "p"}
    run_log.definition_hash = "ab" * 32
    run_log.code = CodeIdentity("c" * 40, dirty=False)
    run_log.end(Status.FAIL, RuntimeError("failed"))
    run_log.step = "fan.1.t"
    run_log.reopen()
    run_log.end(Status.SUCCESS)
    return run_log


def _retried() -> StepLog:
    step = _task("retried", failed=True)
    second = step.new_attempt()
    second.end(Status.SUCCESS)
    step.status = Status.SUCCESS
    return step


def _parallel() -> StepLog:
    step = StepLog("par", "parallel", "par", status=Status.FAIL)
    step.new_attempt().end(Status.FAIL, ValueError("a branch failed"))
    for key, failed in (("en", False), ("fr", True)):
        branch = step.branches[key] = BranchLog(key, Status.FAIL if failed else Status.SUCCESS)
        inner = _records()[3]  # a Map inside each branch
        inner.path = f"par.{key}.fan"
        branch.steps["fan"] = inner
        branch.steps["t"] = _task(f"par.{key}.t", failed=failed)
    return step


def _every_record() -> list[StepLog]:
    return [*_records(), _hostile(), _retried(), _parallel()]


@pytest.mark.parametrize("record", _every_record(), ids=lambda r: r.path)
def test_the_direct_step_reader_builds_what_the_generic_one_does(record: StepLog) -> None:
    text = step_line(record)
    assert read_step(loads(text)["step"]) == step_log_from_dict(loads(text)["step"])


def _generic_record(run_log: RunLog, writer: str | None) -> str:
    """The record as the generic converter writes it, after its summary."""
    record = run_log_to_dict(run_log)
    keys = ("run_id", "status", "tag", "pipeline_name", "started_at", "ended_at")
    summary = {key: record[key] for key in keys}
    summary["writer"] = writer
    return dumps({"_summary": summary, **record})


def _runs() -> list[RunLog]:
    dirty = _run_with(_every_record())
    dirty.code = CodeIdentity("c" * 40, dirty=True)
    odd = RunLog("odd", parameters_in={(1, 2): "tuple key"}, retried_at=[dt.datetime.now(dt.UTC)])
    odd.definition = {"steps": {"a": {"returns": ("x", "y")}}, "when": dt.date(2026, 1, 2)}
    odd.code = CodeIdentity(error="not a git checkout")
    return [RunLog("bare"), _run_with(_every_record()), dirty, odd]


@pytest.mark.parametrize("run_log", _runs(), ids=["bare", "ended", "dirty", "odd"])
@pytest.mark.parametrize("writer", [None, "123-abcdef012345"])
def test_the_record_is_the_generic_encoding(run_log: RunLog, writer: str | None) -> None:
    assert _encode(run_log, writer).decode() == _generic_record(run_log, writer)


def test_the_direct_run_reader_builds_what_the_generic_one_does() -> None:
    for run_log in (RunLog("bare"), _run_with(_every_record())):
        text = _encode(run_log, None)
        generic, direct = loads(text), loads(text)
        del generic["_summary"], direct["_summary"]
        assert read_run(direct) == run_log_from_dict(generic)
    # Fields left out take their defaults, as the generic reader gives them.
    partial = {"run_id": "r", "started_at": "2026-01-02T03:04:05+00:00", "code": {"dirty": "no"}}
    assert read_run(dict(partial, code={"dirty": "no"})) == run_log_from_dict(partial)


@pytest.mark.parametrize(
    "bad",
    [
        [],
        {"name": "a", "kind": "task"},  # no path
        {"name": "a", "kind": "task", "path": "a", "extra": 1},
        {"name": "a", "kind": "task", "path": "a", "status": "DONE"},
        {"name": "a", "kind": "task", "path": "a", "attempts": 5},
        {"name": "a", "kind": "task", "path": "a", "attempts": [{"number": 1, "x": 2}]},
        {"name": "a", "kind": "task", "path": "a", "attempts": [{"started_at": "2026"}]},
        {"name": "a", "kind": "task", "path": "a", "attempts": [{"number": 1, "started_at": 5}]},
        {"name": "a", "kind": "task", "path": "a", "assigned": [1]},
        {"name": "a", "kind": "task", "path": "a", "branches": {"0": {"name": "0", "steps": []}}},
        {"name": "a", "kind": "task", "path": "a", "catalog": [{"name": "f"}]},
    ],
)
def test_the_direct_reader_refuses_what_the_generic_one_refuses(bad: Any) -> None:
    with pytest.raises((cattrs.BaseValidationError, AttributeError, TypeError, ValueError)):
        step_log_from_dict(json.loads(json.dumps(bad)))
    with pytest.raises((TypeError, ValueError, KeyError)):
        read_step(json.loads(json.dumps(bad)))


@pytest.mark.parametrize(
    ("cls", "table"),
    [
        (recordread.RunLog, recordread._RUN),
        (recordread.StepLog, recordread._STEP),
        (recordread.BranchLog, recordread._BRANCH),
        (recordread.Attempt, recordread._ATTEMPT),
        (recordread.CatalogEntry, recordread._ENTRY),
        (recordread.CodeIdentity, recordread._CODE),
    ],
    ids=lambda value: getattr(value, "__name__", ""),
)
def test_the_direct_reader_knows_every_field_of_every_record(
    cls: type, table: dict[str, Any]
) -> None:
    # A field added to a record class and not to the reader's table would make every record
    # holding it unreadable: one schema, held in step by this test.
    assert set(table) == {field.name for field in attrs.fields(cls) if field.init}


_TIMES = st.datetimes(
    min_value=dt.datetime(1, 1, 1),
    max_value=dt.datetime(9999, 12, 31, 23, 59),
    timezones=st.just(dt.UTC),
)


@given(st.lists(st.one_of(_TIMES, _TIMES.map(lambda t: t.replace(microsecond=0))), max_size=8))
def test_a_time_is_written_as_its_isoformat(times: list[dt.datetime]) -> None:
    # One after another, as a run writes them: the minute kept from the time before is
    # used only for times within it.
    for time in times:
        assert jsontext.time_text(time) == json.dumps(time.isoformat())


@pytest.mark.parametrize(
    "time",
    [
        dt.datetime(2026, 1, 2, 3, 4, 5, 6),  # naive
        dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
        dt.datetime(2026, 1, 2, 3, 4, 5, 60, tzinfo=dt.timezone(dt.timedelta(0), "Z")),
        dt.datetime(999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),
        dt.datetime(2026, 1, 2, 3, 4, 0, tzinfo=dt.UTC),
    ],
)
def test_other_times_are_written_as_their_isoformat(time: dt.datetime) -> None:
    jsontext.time_text(dt.datetime(2026, 1, 2, 3, 4, 30, tzinfo=dt.UTC))  # that minute kept
    assert jsontext.time_text(time) == json.dumps(time.isoformat())


def test_a_kept_text_serves_only_its_step_as_it_was() -> None:
    texts = steplines.StepTexts()
    step = _task("ok")
    texts.keep(step, "text", steplines._state(step))
    assert texts.get(step) == "text"
    assert texts.get(_task("ok")) is None  # another record at that path
    step.status = Status.FAIL
    assert texts.get(step) is None
    step.status = Status.SUCCESS
    step.new_attempt()
    assert texts.get(step) is None
    step.attempts.pop()
    step.add_catalog([CatalogEntry("a", "ab" * 32, "put")])
    assert texts.get(step) is None
    odd = _task("odd")
    odd.status = "DONE"  # type: ignore[assignment]  # not a Status: never kept
    texts.keep(odd, "odd text", steplines._state(odd))
    assert texts.get(odd) is None


async def test_the_composites_around_a_step_are_looked_for_until_they_are_written(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A Map's items after the first find their enclosing records written (the innermost
    one's path is in the set): no walk of the record tree per item."""
    from runnable_trio import AsyncPipeline, AsyncPythonTask, Map, Parallel
    from tests.helpers import run

    walks: list[str] = []
    enclosing = steplines._enclosing

    def counted(run_log: RunLog, path: str) -> list[StepLog]:
        walks.append(path)
        return enclosing(run_log, path)

    monkeypatch.setattr(steplines, "_enclosing", counted)

    async def item(item: int) -> None:
        pass

    each = Map("each", "items", "item", AsyncPythonTask("work", item).as_async_pipeline())
    inner = AsyncPipeline([each])
    pipeline = AsyncPipeline([Parallel("fan", branches={"a": inner, "b": inner})])
    run_log = await run(pipeline, parameters={"items": list(range(5))})
    # One walk per Map, at the first of its items to end; the Map's own line finds the
    # Parallel around it written by then.
    assert sorted(path.split(".")[1] for path in walks) == ["a", "b"]
    assert all(path.endswith(".work") for path in walks)
    journal = FileRunLogStore().load(run_log.run_id)
    assert journal.steps["fan"].branches["b"].steps["each"].branches["4"].steps["work"].status
