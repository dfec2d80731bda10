"""Adversarial tests of session 16's changes (review17): the start-record template, the
shared RunOptions, period's two kept minutes, the inlined journal line, the PostgreSQL
journal's lost-session retry and compat's consumer take. Each test tries to make the fast
path differ from the generic one, or one run's values reach another's."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime as dt
import json
import random
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import psycopg
import pytest
import trio
import trio.lowlevel
import trio.testing

from runnable_trio import (
    AsyncPipeline,
    AsyncPythonTask,
    FileRunLogStore,
    Parallel,
    Status,
    _jsontext,
    _options,
    _pgjournal,
    _startrecord,
)
from runnable_trio._definition import definition_of
from runnable_trio._errors import RunConfigurationError
from runnable_trio._options import RunOptions
from runnable_trio._runlog import Attempt, RunLog, StepLog
from runnable_trio._startrecord import start_record
from runnable_trio._steplines import StepTexts, _step, journal_lines, run_record

from .helpers import in_threads
from .test_compat_asyncio import run_asyncio
from .test_review5 import check_log

ID_MARK = "\x00run_id\x00"
PARAMETERS_MARK = "\x00parameters_in\x00"
TIME_MARK_TEXT = "0001-01-01T00:00:00.000001+00:00"


async def _one() -> AsyncIterator[dict[str, Any]]:
    yield {"type": "one"}


def _record(pipeline: AsyncPipeline, **fields: Any) -> RunLog:
    definition, definition_hash = definition_of(pipeline)
    fields.setdefault("run_id", "20261207-125500-000001-abcdef1")
    fields.setdefault("pipeline_name", pipeline.name)
    fields.setdefault("definition", definition)
    fields.setdefault("definition_hash", definition_hash)
    return RunLog(**fields)


@pytest.fixture
def fresh_templates(monkeypatch: pytest.MonkeyPatch) -> dict[Any, Any]:
    templates: dict[Any, Any] = {}
    monkeypatch.setattr(_startrecord, "_templates", templates)
    return templates


class _Stamp(dt.datetime):
    """A datetime subclass: time_text writes it with isoformat()."""


_NASTY_TEXTS = [
    ID_MARK,
    PARAMETERS_MARK,
    "a" + ID_MARK + "b",
    '"' + ID_MARK + '"',
    "\\" + ID_MARK + "\\",
    ID_MARK + ID_MARK,
    TIME_MARK_TEXT,
    '"' + TIME_MARK_TEXT + '"',
    '{"' + PARAMETERS_MARK + '":null}',
    '"\\u0000run_id\\u0000"',  # the marker's quoted text, as text
    '{"\\u0000parameters_in\\u0000":null}',
    'quote " backslash \\ nul \x00 tab \t newline \n',
    "naïve ünïcödé \u2028 \U0001f600 \ud800",  # a lone surrogate too
    "x" * 100_000,
    "",
]

_NASTY_TIMES = [
    dt.datetime(2026, 12, 7, 12, 0, 0, tzinfo=dt.UTC),  # microsecond 0, a minute's start
    dt.datetime(2026, 12, 7, 12, 0, 59, 999_999, tzinfo=dt.UTC),  # a minute's last
    dt.datetime(2026, 12, 7, 12, 0, 0, 5),  # naive
    dt.datetime(2026, 12, 7, 13, 0, 0, 5, tzinfo=dt.timezone(dt.timedelta(hours=1))),
    dt.datetime(2026, 12, 7, 12, 0, 0, 5, tzinfo=dt.timezone(dt.timedelta(0))),  # not dt.UTC
    dt.datetime(2026, 12, 7, 12, 0, 0, 5, tzinfo=dt.UTC, fold=1),
    _Stamp(2026, 12, 7, 12, 0, 0, 5, tzinfo=dt.UTC),
    _Stamp(1, 1, 1, 0, 0, 0, 1, tzinfo=dt.UTC),  # the marker's own time, as a subclass
    dt.datetime(1, 1, 1, 0, 0, 0, 1, tzinfo=dt.UTC),  # the marker's own time
    dt.datetime(9999, 12, 31, 23, 58, 59, 999_999, tzinfo=dt.UTC),  # the last minute: see below
]

_NASTY_PARAMETERS: list[dict[Any, Any]] = [
    {},
    {PARAMETERS_MARK: None},
    {PARAMETERS_MARK: PARAMETERS_MARK, ID_MARK: ID_MARK},
    {'q"uote': "back\\slash", "nul\x00": "\x00", "é": "ü"},
    {"big": 10**700, "nan": float("nan"), "inf": float("-inf")},
    {"huge": "y" * 200_000},
    {"nested": {"a": [1, {"b": None}], ID_MARK: TIME_MARK_TEXT}},
    {"when": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)},
    {1: "int key"},
]


def _pipelines() -> list[AsyncPipeline]:
    task = AsyncPythonTask(name="t", function=_one)
    return [
        task.as_async_pipeline(),
        AsyncPipeline([AsyncPythonTask(name=ID_MARK, function=_one)], name=ID_MARK),
        AsyncPipeline([task], name=TIME_MARK_TEXT, description=PARAMETERS_MARK),
        AsyncPipeline(
            [
                Parallel(
                    "fan",
                    branches={"a": task.as_async_pipeline(), ID_MARK: task.as_async_pipeline()},
                )
            ]
        ),
    ]


# --- _startrecord: the text is run_record's, whatever the values -----------------------------


@pytest.mark.parametrize("text", _NASTY_TEXTS)
def test_start_record_with_nasty_ids_tags_and_names_is_run_records(
    text: str, fresh_templates: dict[Any, Any]
) -> None:
    for pipeline in _pipelines():
        for fields in (
            {"run_id": text},
            {"tag": text},
            {"pipeline_name": text},
            {"run_id": text, "tag": text, "pipeline_name": text},
        ):
            for writer in ("5117-ad83ad0e78e0", ID_MARK):
                for _ in range(2):  # the template made, then used
                    run_log = _record(pipeline, **fields)
                    assert start_record(run_log, writer) == run_record(run_log, writer)


@pytest.mark.parametrize("started_at", _NASTY_TIMES, ids=repr)
def test_start_record_with_nasty_times_is_run_records(
    started_at: dt.datetime, fresh_templates: dict[Any, Any]
) -> None:
    for pipeline in _pipelines():
        for _ in range(2):
            run_log = _record(pipeline, started_at=started_at)
            assert start_record(run_log, "w") == run_record(run_log, "w")


@pytest.mark.parametrize("parameters", _NASTY_PARAMETERS, ids=repr)
def test_start_record_with_nasty_parameters_is_run_records(
    parameters: dict[Any, Any], fresh_templates: dict[Any, Any]
) -> None:
    for pipeline in _pipelines():
        for _ in range(2):
            run_log = _record(pipeline, parameters_in=parameters)
            assert start_record(run_log, "w") == run_record(run_log, "w")


def test_one_runs_values_do_not_reach_the_next_runs_start_record(
    fresh_templates: dict[Any, Any],
) -> None:
    pipeline = _pipelines()[0]
    parameters = {"secret": "first run's"}
    first = _record(
        pipeline,
        run_id="first-run-id",
        parameters_in=parameters,
        started_at=dt.datetime(2020, 5, 5, 5, 5, 5, 5, tzinfo=dt.UTC),
    )
    assert start_record(first, "w") == run_record(first, "w")
    # The first run's dict changed after its record (a step assigning into it), its record
    # changed too: none of it is in the template.
    parameters["secret"] = "changed"
    first.parameters_out["out"] = 1
    first.steps["t"] = StepLog("t", "task", "t")
    second = _record(pipeline, run_id="second-run-id")
    text = start_record(second, "w")
    assert text == run_record(second, "w")
    for leaked in ("first-run-id", "first run's", "changed", "2020-05-05", '"out"'):
        assert leaked not in text


def test_a_template_is_per_tag_name_hash_and_writer_of_one_definition(
    fresh_templates: dict[Any, Any],
) -> None:
    pipeline = _pipelines()[0]
    definition, _ = definition_of(pipeline)
    variants = [
        {},
        {"tag": "a"},
        {"tag": "b"},
        {"pipeline_name": "other"},
        {"definition_hash": "0" * 64},
        {"definition": dict(definition)},  # an equal dict, another object
    ]
    for _ in range(2):
        for variant in variants:
            for writer in ("w1", "w2"):
                run_log = _record(pipeline, **variant)
                assert start_record(run_log, writer) == run_record(run_log, writer)
    assert len(fresh_templates) == len(variants) * 2


def test_templates_are_bounded_for_many_definitions_and_tags(
    fresh_templates: dict[Any, Any],
) -> None:
    pipeline = _pipelines()[0]
    for n in range(500):
        run_log = _record(pipeline, tag=f"tag {n}")
        assert start_record(run_log, "w") == run_record(run_log, "w")
        assert len(fresh_templates) <= _startrecord._KEPT
    for n in range(100):
        task = AsyncPythonTask(name=f"t{n}", function=_one)
        run_log = _record(task.as_async_pipeline())
        assert start_record(run_log, "w") == run_record(run_log, "w")
        assert len(fresh_templates) <= _startrecord._KEPT


def test_start_records_written_in_threads_are_each_their_runs(
    fresh_templates: dict[Any, Any],
) -> None:
    # Worker threads start records at once, for runs of a few tags (so templates are made,
    # used and cleared concurrently): every text is its own run's.
    pipelines = _pipelines()
    failures: list[str] = []
    start = threading.Barrier(8)

    def work(worker: int) -> None:
        start.wait()
        for n in range(300):
            pipeline = pipelines[n % len(pipelines)]
            run_log = _record(
                pipeline,
                run_id=f"run-{worker}-{n}",
                tag=f"tag-{(worker + n) % 20}",
                parameters_in={"worker": worker, "n": n},
                started_at=dt.datetime.now(dt.UTC),
            )
            text = start_record(run_log, f"writer-{worker % 2}")
            if text != run_record(run_log, f"writer-{worker % 2}"):
                failures.append(run_log.run_id)

    in_threads(work, 8)
    assert failures == []
    assert len(fresh_templates) <= _startrecord._KEPT + 8


def test_concurrent_file_store_runs_with_other_tags_and_ids_keep_their_own(
    tmp_path: Path, fresh_templates: dict[Any, Any]
) -> None:
    # The template and the shared RunOptions both in play: concurrent runs of one pipeline
    # with different tags (cached options) and with parameters (checked per run).
    pipeline = AsyncPythonTask(name="t", function=_one).as_async_pipeline()
    store = FileRunLogStore(tmp_path / "runs")
    tags = ["", "a", ID_MARK, 'q"\\', "é" * 50, "a"]
    results: dict[str, tuple[str, dict[str, Any]]] = {}

    async def one(tag: str, n: int) -> None:
        parameters = {"n": n, "text": ID_MARK} if n % 2 else None
        run = pipeline.execute_streaming(store=store, tag=tag, parameters=parameters)
        async for _ in run:
            await trio.lowlevel.checkpoint()
        results[run.run_id] = (tag, parameters or {})

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            for n, tag in enumerate(tags * 3):
                nursery.start_soon(one, tag, n)

    trio.run(main)
    assert len(results) == len(tags) * 3  # every run its own id
    for run_id, (tag, parameters) in results.items():
        record = store.load(run_id)
        assert record.run_id == run_id
        assert record.tag == tag
        assert record.status is Status.SUCCESS
        for name, value in parameters.items():
            assert record.parameters_in[name] == value


# --- RunOptions shared per (configuration file, tag, parameters file) ------------------------


def test_shared_run_options_cannot_be_changed_through_a_returned_one() -> None:
    options = RunOptions.check(tag="shared", configuration_file="c.yaml")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        options.run_id = "mine"  # type: ignore[misc]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        options.parameters = {"x": 1}  # type: ignore[misc]
    changed = attrs.evolve(options, run_id="mine", parameters={"x": 1})
    again = RunOptions.check(tag="shared", configuration_file="c.yaml")
    assert again is options
    assert again.run_id == ""
    assert again.parameters is None
    assert changed is not options


@pytest.mark.parametrize("text", _NASTY_TEXTS[:-1])
def test_shared_run_options_are_keyed_by_which_keyword_holds_the_text(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_options, "_by_texts", {})  # none cleared (full) within the test
    made: dict[str, RunOptions] = {
        "configuration_file": RunOptions.check(configuration_file=text),
        "tag": RunOptions.check(tag=text),
        "parameters_file": RunOptions.check(parameters_file=text),
    }
    for keyword, options in made.items():
        assert options == RunOptions(**{keyword: text})
        assert RunOptions.check(**{keyword: text}) is options  # type: ignore[arg-type]
    assert len({id(options) for options in made.values()}) == 3
    # The same texts in the other places: (a, "", b) is not ("", a, b)...
    both = RunOptions.check(configuration_file=text, tag="x")
    assert both == RunOptions(configuration_file=text, tag="x")
    assert RunOptions.check(configuration_file="x", tag=text) == RunOptions(
        configuration_file="x", tag=text
    )


def test_a_str_subclass_tag_is_not_shared_and_a_bad_one_still_raises() -> None:
    class Tag(str):
        pass

    tag = Tag("sub")
    options = RunOptions.check(tag=tag)
    assert options == RunOptions(tag="sub")
    assert options is not RunOptions.check(tag=tag)
    with pytest.raises(RunConfigurationError, match="tag must be a str"):
        RunOptions.check(tag=b"bytes")  # type: ignore[arg-type]
    with pytest.raises(RunConfigurationError, match="log_level"):
        RunOptions.check(tag="t", log_level="NOPE")
    with pytest.raises(RunConfigurationError, match="run_id must be a str"):
        RunOptions.check(tag="t", run_id=5)  # type: ignore[arg-type]


def test_shared_run_options_are_bounded_for_many_tags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_options, "_by_texts", {})
    for n in range(2000):
        options = RunOptions.check(tag=f"tag {n}", configuration_file="c.yaml")
        assert options.tag == f"tag {n}"
        assert len(_options._by_texts) <= _options._BY_TEXTS_KEPT


def test_shared_run_options_made_in_threads_are_each_their_tags(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_options, "_by_texts", {})
    failures: list[tuple[str, str]] = []
    start = threading.Barrier(8)

    def work(worker: int) -> None:
        start.wait()
        for n in range(2000):
            tag = f"tag-{(worker * 7 + n) % 50}"
            options = RunOptions.check(tag=tag, parameters_file=f"p{worker % 3}")
            if options.tag != tag or options.parameters_file != f"p{worker % 3}":
                failures.append((tag, options.tag))

    in_threads(work, 8)
    assert failures == []
    assert len(_options._by_texts) <= _options._BY_TEXTS_KEPT + 8


# --- _jsontext.period: either kept minute, else time_text ------------------------------------


def _iso(value: dt.datetime | None) -> str:
    return "null" if value is None else json.dumps(value.isoformat())


def _expected_period(started: dt.datetime, ended: dt.datetime | None) -> str:
    return f'"started_at":{_iso(started)},"ended_at":{_iso(ended)}'


def test_period_is_isoformats_text_around_minute_boundaries_in_any_kept_state() -> None:
    chooser = random.Random(16)
    base = dt.datetime(2026, 12, 7, 12, 30, tzinfo=dt.UTC)
    minutes = [base + dt.timedelta(minutes=m) for m in (-1, 0, 1, 2)]
    edges = [
        dt.timedelta(0),
        dt.timedelta(microseconds=1),
        dt.timedelta(seconds=59, microseconds=999_999),
        dt.timedelta(seconds=60),
        dt.timedelta(seconds=30, microseconds=1000),
        dt.timedelta(seconds=30, microseconds=999),
    ]
    times = [minute + edge for minute in minutes for edge in edges]
    for _ in range(3000):
        # Keep a random pair of minutes (time_text makes them so), then write a random pair.
        for value in chooser.sample(times, 2):
            assert _jsontext.time_text(value) == _iso(value)
        started, ended = chooser.choice(times), chooser.choice([*times, None])
        assert _jsontext.period(started, ended) == _expected_period(started, ended)


@pytest.mark.parametrize("other", _NASTY_TIMES, ids=repr)
def test_period_with_a_time_not_plain_utc_is_isoformats(other: dt.datetime) -> None:
    now = dt.datetime.now(dt.UTC)
    _jsontext.time_text(now)
    _jsontext.time_text(other)
    for started, ended in ((other, now), (now, other), (other, other), (other, None)):
        assert _jsontext.period(started, ended) == _expected_period(started, ended)


def test_period_started_in_one_kept_minute_and_ended_in_the_other_is_isoformats() -> None:
    first = dt.datetime(2026, 12, 7, 12, 30, 59, 999_999, tzinfo=dt.UTC)
    second = first + dt.timedelta(microseconds=1)  # the next minute's first
    _jsontext.time_text(first)
    _jsontext.time_text(second)
    assert _jsontext._before[0] == first.replace(second=0, microsecond=0)
    assert _jsontext._minute[0] == second
    for started, ended in ((first, second), (second, first)):
        assert _jsontext.period(started, ended) == _expected_period(started, ended)


def test_period_and_time_text_in_threads_across_minutes_are_isoformats() -> None:
    # Worker threads write records: the kept minutes change under a reader at any moment,
    # each read whole.
    base = dt.datetime(2026, 12, 7, 12, 30, 59, 900_000, tzinfo=dt.UTC)
    failures: list[str] = []
    start = threading.Barrier(6)

    def work(worker: int) -> None:
        chooser = random.Random(worker)
        start.wait()
        for _ in range(5000):
            started = base + dt.timedelta(microseconds=chooser.randrange(0, 300_000))
            ended = started + dt.timedelta(microseconds=chooser.randrange(0, 200_000))
            if chooser.random() < 0.05:
                started -= dt.timedelta(hours=chooser.randrange(1, 5))
            text = _jsontext.period(started, ended)
            if text != _expected_period(started, ended):
                failures.append(text)
            if _jsontext.time_text(ended) != _iso(ended):
                failures.append(str(ended))

    in_threads(work, 6)
    assert failures == []


# --- the journal line inlined in journal_lines and append_step -------------------------------


def _leaf(name: str, path: str, **attempt: Any) -> StepLog:
    step = StepLog(name, "task", path, status=Status.SUCCESS)
    started = attempt.pop("started_at", dt.datetime.now(dt.UTC))
    step.attempts.append(
        Attempt(
            number=1,
            started_at=started,
            ended_at=attempt.pop("ended_at", started + dt.timedelta(microseconds=3)),
            status=attempt.pop("status", Status.SUCCESS),
            **attempt,
        )
    )
    return step


@pytest.mark.parametrize("text", _NASTY_TEXTS, ids=lambda text: repr(text[:30]))
def test_a_leaf_steps_journal_line_is_the_generic_steps_text(text: str) -> None:
    pipeline = _pipelines()[0]
    steps = [
        _leaf(text, text),
        _leaf("t", "t", error_type=text, error_message=text, status=Status.FAIL),
        _leaf("t", "t", parameters_in={text: text}, parameters_out={"x": 10**700}),
        _leaf("t", "t", metrics={"m": float("nan"), text: [1, 2]}),
    ]
    for time in _NASTY_TIMES:
        steps.append(_leaf("t", "t", started_at=time, ended_at=time))
    steps.append(_leaf("t", "t", ended_at=None, status=Status.PROCESSING))
    assigned = _leaf("t", "t")
    assigned.assigned = {text: {"nested": text}, "n": 1}
    steps.append(assigned)
    odd = _leaf("t", "t")
    odd.status = Status.CANCELLED
    steps.append(odd)
    for step in steps:
        run_log = _record(pipeline)
        texts = StepTexts()
        lines = journal_lines(run_log, step, set(), texts)
        assert lines == [f'{{"step":{_step(step)}}}']
        json.loads(lines[0])  # one line of JSON: no raw newline in it


def test_file_store_journal_lines_of_nested_steps_with_nasty_names_read_back(
    tmp_path: Path,
) -> None:
    # Several lines at once (a composite's record, then a step's) and one line alone both
    # go through append_step: every line complete, the record loads with its steps.
    names = ["a\nb", 'q"uote', "é\u2028", "nul\x00"]

    async def event() -> AsyncIterator[dict[str, Any]]:
        yield {"type": "x", "text": "\n".join(names)}

    branch = AsyncPipeline([AsyncPythonTask(name=name, function=event) for name in names])
    pipeline = AsyncPipeline(
        [
            Parallel("fan", branches=dict.fromkeys(names, branch)),
            AsyncPythonTask(name="after\n", function=event),
        ]
    )
    store = FileRunLogStore(tmp_path / "runs")

    async def main() -> str:
        run = pipeline.execute_streaming(store=store, tag="\n".join(names))
        async for _ in run:
            pass
        return run.run_id

    run_id = trio.run(main)
    record = store.load(run_id)
    assert record.status is Status.SUCCESS
    assert record.tag == "\n".join(names)
    assert set(record.steps) == {"fan", "after\n"}
    assert set(record.steps["fan"].branches) == set(names)
    for branch_log in record.steps["fan"].branches.values():
        assert list(branch_log.steps) == names


# --- _pgjournal: a lost session closes its own connection, never one in use ------------------


class _FakeConnection:
    def __init__(self, name: str) -> None:
        self.name = name
        self.lost = False
        self.closed = False
        self.in_use = False
        self.used_after_close = False

    def close(self) -> None:
        if self.in_use:
            self.used_after_close = True
        self.closed = True

    def __repr__(self) -> str:
        return f"<{self.name}>"


class _FakeDb:
    conninfo = ""
    timeout = 5.0

    def error(self, exc: BaseException) -> RunConfigurationError:
        return RunConfigurationError(f"fake: {exc}")


def _fake_writer(
    monkeypatch: pytest.MonkeyPatch, insert: Any, opened: list[_FakeConnection]
) -> Any:
    async def connect(self: Any) -> _FakeConnection:
        connection = _FakeConnection(f"new{len(opened)}")
        opened.append(connection)
        return connection

    monkeypatch.setattr(_pgjournal.JournalWriter, "_connect", connect)
    monkeypatch.setattr(_pgjournal, "_insert", insert)
    return _pgjournal.JournalWriter(_FakeDb())  # type: ignore[arg-type]


def test_a_lost_session_retry_closes_no_connection_another_commit_is_using(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    opened: list[_FakeConnection] = []
    gates: dict[str, trio.Event] = {}
    failed: list[_FakeConnection] = []

    async def insert(connection: _FakeConnection, run_ids: list[str], entries: list[str]) -> None:
        connection.in_use = True
        try:
            if connection.closed:
                raise AssertionError(f"{connection!r} used after it was closed")
            gate = gates.get(run_ids[0])
            if gate is not None:
                await gate.wait()
            if run_ids[0] == "a" and not failed:
                failed.append(connection)
                raise psycopg.errors.AdminShutdown("terminating connection")
        finally:
            connection.in_use = False

    writer = _fake_writer(monkeypatch, insert, opened)
    kept = [_FakeConnection("kept0"), _FakeConnection("kept1")]

    async def main() -> None:
        writer._idle.extend(kept)
        gates["a"], gates["b"] = trio.Event(), trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(writer.commit, "a", ["row a"])
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(writer.commit, "b", ["row b"])  # its own batch, its own slot
            await trio.testing.wait_all_tasks_blocked()
            b_connection = kept[0]  # a took the last kept, b the other
            assert b_connection.in_use
            gates["a"].set()  # a's session lost while b's commit is on its connection
            await trio.testing.wait_all_tasks_blocked()
            assert not b_connection.closed
            gates["b"].set()

    trio.run(main)
    [lost] = failed
    assert lost.closed
    assert not any(c.used_after_close for c in [*kept, *opened])
    assert len(opened) == 1  # the retry's new connection
    assert lost not in writer._idle
    assert all(not c.closed for c in writer._idle)
    assert set(writer._idle) == {opened[0], next(c for c in kept if c is not lost)}


def test_a_session_lost_on_both_attempts_keeps_no_connection_and_raises(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    opened: list[_FakeConnection] = []

    async def insert(connection: _FakeConnection, run_ids: list[str], entries: list[str]) -> None:
        raise psycopg.errors.AdminShutdown("terminating connection")

    writer = _fake_writer(monkeypatch, insert, opened)
    kept = [_FakeConnection("kept0"), _FakeConnection("kept1")]

    async def main() -> None:
        writer._idle.extend(kept)
        with pytest.raises(RunConfigurationError, match="terminating connection"):
            await writer.commit("a", ["row"])

    trio.run(main)
    assert all(c.closed for c in [*kept, *opened])
    assert len(opened) == 1
    assert writer._idle == []


def test_an_error_not_of_a_lost_session_keeps_the_connection_and_is_not_retried(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    opened: list[_FakeConnection] = []
    calls: list[_FakeConnection] = []

    async def insert(connection: _FakeConnection, run_ids: list[str], entries: list[str]) -> None:
        calls.append(connection)
        raise psycopg.errors.QueryCanceled("statement timeout")  # 57014: not 57P

    writer = _fake_writer(monkeypatch, insert, opened)
    kept = _FakeConnection("kept0")

    async def main() -> None:
        writer._idle.append(kept)
        with pytest.raises(RunConfigurationError, match="statement timeout"):
            await writer.commit("a", ["row"])

    trio.run(main)
    assert calls == [kept]
    assert not kept.closed
    assert writer._idle == [kept]
    assert opened == []


def test_a_lost_session_on_a_new_connection_is_not_retried(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No kept connection: the first attempt's connection is new, and a lost session on it
    # is retried once (on another new one), then raised; neither is kept.
    opened: list[_FakeConnection] = []

    async def insert(connection: _FakeConnection, run_ids: list[str], entries: list[str]) -> None:
        connection.lost = True
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    writer = _fake_writer(monkeypatch, insert, opened)

    async def main() -> None:
        with pytest.raises(RunConfigurationError, match="closed the connection"):
            await writer.commit("a", ["row"])

    trio.run(main)
    assert len(opened) == 2
    assert all(c.closed for c in opened)
    assert writer._idle == []


# --- compat: the consumer's take with an event log -------------------------------------------


async def _cancel_then_close(consumer: asyncio.Task[Any], run: Any) -> None:
    """Cancel the ``consumer`` task, wait for it to end, then close the stream ``run``."""
    consumer.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await consumer
    await run.aclose()


def test_a_consumer_cancelled_in_anext_with_an_event_log_logs_exactly_what_it_took() -> None:
    from runnable import AsyncPythonTask as CompatTask

    gate = asyncio.Event()

    async def five_then_wait() -> AsyncIterator[dict[str, Any]]:
        for n in range(5):
            yield {"type": "tick", "n": n, "text": ID_MARK}
        await gate.wait()  # never set
        yield {"type": "tick", "n": 5}

    async def main() -> list[dict[str, Any]]:
        pipeline = CompatTask("tick", five_then_wait).as_async_pipeline()
        run = pipeline.execute_streaming(run_id="r1", event_log=True)
        received = []
        for _ in range(5):
            event = await anext(run)
            received.append(copy.deepcopy(event))
            # The consumer changes what it took: the log holds it as it was taken.
            event["n"] = "changed"
            event["added"] = True
        waiting = asyncio.create_task(anext(run))
        await asyncio.sleep(0.01)
        await _cancel_then_close(waiting, run)
        return received

    received = run_asyncio(main)
    check_log("r1", received, "CANCELLED")


def test_a_consumer_cancelled_with_events_waiting_logs_only_those_it_took() -> None:
    from runnable import AsyncPythonTask as CompatTask

    async def many() -> AsyncIterator[dict[str, Any]]:
        for n in range(10_000):
            yield {"type": "tick", "n": n}

    async def main() -> int:
        pipeline = CompatTask("tick", many).as_async_pipeline()
        run = pipeline.execute_streaming(run_id="r1", event_log=True)
        taken = 0

        async def consume() -> None:
            nonlocal taken
            async for _ in run:
                taken += 1
                if taken == 7:
                    # Others wait in the hand-off: cancelled between takes.
                    await asyncio.sleep(3600)

        task = asyncio.create_task(consume())
        while taken < 7:
            await asyncio.sleep(0)
        await _cancel_then_close(task, run)
        return taken

    taken = run_asyncio(main)
    check_log("r1", [{"type": "tick", "n": n} for n in range(taken)], "CANCELLED")


def test_a_time_in_the_last_representable_minute_is_its_isoformat() -> None:
    # The last minute of year 9999 has no minute after it to end a kept range with (it
    # raised OverflowError): it is written by isoformat(), alone or as a period's end.
    last = dt.datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=dt.UTC)
    assert _jsontext.time_text(last) == _iso(last)
    first = last.replace(second=0, microsecond=0)
    assert json.loads("{" + _jsontext.period(first, last) + "}") == {
        "started_at": first.isoformat(),
        "ended_at": last.isoformat(),
    }
