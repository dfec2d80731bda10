"""The PostgreSQL run-log store against a real server (``tests/pgserver.py``).

One process: configuration, records, liveness, schema versions, a database that is down or
restarted, the event log and its replay. Several processes (``tests/pgchild.py``): a replay
following a run live in another process, a killed process's run shown dead and retried.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import trio

from runnable_trio import (
    AsyncPipeline,
    AsyncPythonTask,
    ExecutionFailedError,
    RunConfigurationError,
    Status,
    list_runs,
    read_run_log,
    replay,
    retry_streaming,
)
from runnable_trio._config import load_configuration
from runnable_trio._pgschema import SCHEMA_VERSION, ensure_schema
from runnable_trio._stores import store_from_configuration
from tests.helpers import run, run_failing, task
from tests.pgserver import PostgresServer

# A real server: its start (initdb) and restarts take seconds on a loaded machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
ROOT = Path(__file__).resolve().parent.parent


def write_config(path: Path, body: str) -> str:
    path.write_text(body, encoding="utf-8")
    return str(path)


async def numbers(n: int) -> AsyncIterator[dict[str, Any]]:
    for number in range(1, n + 1):
        yield {"type": "chunk", "number": number}
    yield {"type": "done", "total": n}


def counting(n: int = 3) -> AsyncPipeline:
    return task("count", numbers, "total")


# Configuration.


def test_postgres_takes_a_dsn_or_the_name_of_a_variable_holding_it(tmp_path: Path) -> None:
    for body in ("type: postgres", "type: postgres\n  dsn: x\n  dsn_env: Y", "dsn: x"):
        path = write_config(tmp_path / "c.yaml", f"run_log_store:\n  {body}\n")
        with pytest.raises(RunConfigurationError, match="dsn"):
            load_configuration(path)


def test_dsn_env_is_read_when_the_store_is_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(tmp_path / "c.yaml", "run_log_store:\n  type: postgres\n  dsn_env: PGX\n")
    monkeypatch.delenv("PGX", raising=False)
    with pytest.raises(RunConfigurationError, match="'PGX', which is not set"):
        store_from_configuration(load_configuration(path))
    monkeypatch.setenv("PGX", "host=/nowhere dbname=x")
    assert load_configuration(path).run_log_store.postgres_dsn() == "host=/nowhere dbname=x"


def test_psycopg_is_not_imported_unless_configured(tmp_path: Path) -> None:
    code = (
        "import sys, trio, runnable_trio as rt\n"
        "async def one() -> int:\n    return 1\n"
        "p = rt.AsyncPythonTask('one', one, returns=['x']).as_async_pipeline()\n"
        "async def main():\n    async for _ in p.execute_streaming(event_log=True): pass\n"
        "trio.run(main)\n"
        "assert not [m for m in sys.modules if m.startswith('psycopg')], 'psycopg imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True, timeout=60)


# Records and liveness, in one process.


async def test_a_run_is_recorded_listed_and_read(pg_config: str) -> None:
    run_log = await run(counting(), parameters={"n": 3}, run_id="r-1", configuration_file=pg_config)
    assert run_log.status is Status.SUCCESS
    read = read_run_log("r-1", configuration_file=pg_config)
    assert read.status is Status.SUCCESS
    assert read.steps["count"].status is Status.SUCCESS
    assert read.parameters_out["total"] == 3
    [summary] = list_runs(configuration_file=pg_config)
    assert (summary.run_id, summary.status, summary.alive) == ("r-1", Status.SUCCESS, False)
    assert summary.ended_at is not None
    assert summary.ended_at >= summary.started_at
    with pytest.raises(RunConfigurationError, match="already exists"):
        counting().execute_streaming(run_id="r-1", configuration_file=pg_config)
    with pytest.raises(RunConfigurationError, match="no run with id 'nope'"):
        read_run_log("nope", configuration_file=pg_config)


async def test_each_finished_step_is_committed_while_the_run_goes(pg_config: str) -> None:
    release = trio.Event()

    async def first() -> int:
        return 1

    async def second(value: int) -> int:
        await release.wait()
        return value + 1

    pipeline = AsyncPipeline(
        steps=[
            AsyncPythonTask("first", first, returns=["value"]),
            AsyncPythonTask("second", second, returns=["answer"]),
        ]
    )
    async with pipeline.stream(
        run_id="steps", configuration_file=pg_config, attribution=True
    ) as events:
        async for event in events:
            if event["type"] == "step.started" and event["_meta"]["step"] == "second":
                break
        during = await trio.to_thread.run_sync(
            lambda: read_run_log("steps", configuration_file=pg_config)
        )
        [summary] = await trio.to_thread.run_sync(lambda: list_runs(configuration_file=pg_config))
        release.set()
        async for _ in events:
            pass
    assert during.status is Status.PROCESSING
    assert during.steps["first"].status is Status.SUCCESS
    assert "second" not in during.steps
    assert summary.alive is True
    assert read_run_log("steps", configuration_file=pg_config).status is Status.SUCCESS
    assert list_runs(configuration_file=pg_config)[0].alive is False


async def test_liveness_is_per_database(
    pg_config: str, pg_server: PostgresServer, tmp_path: Path
) -> None:
    other = write_config(
        tmp_path / "other.yaml",
        f"run_log_store:\n  type: postgres\n  dsn: '{pg_server.create_database()}'\n",
    )
    await run(counting(), parameters={"n": 1}, run_id="twin", configuration_file=other)
    release = trio.Event()

    async def waiting() -> None:
        await release.wait()

    async with task("wait", waiting).stream(
        run_id="twin", configuration_file=pg_config, attribution=True
    ) as events:
        assert (await events.receive())["type"] == "run.started"  # its record is claimed
        here = await trio.to_thread.run_sync(lambda: list_runs(configuration_file=pg_config))
        there = await trio.to_thread.run_sync(lambda: list_runs(configuration_file=other))
        release.set()
        async for _ in events:
            pass
    assert [run.alive for run in here] == [True]
    assert [run.alive for run in there] == [False]  # the same id's lock, another database


async def test_a_failed_run_is_recorded_and_retried(pg_config: str, tmp_path: Path) -> None:
    calls = []

    async def flaky() -> int:
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("first time")
        return 7

    pipeline = task("flaky", flaky, "x")
    error, _ = await run_failing(pipeline, run_id="f", configuration_file=pg_config)
    assert isinstance(error, ValueError)
    failed = read_run_log("f", configuration_file=pg_config)
    assert (failed.status, failed.error_type) == (Status.FAIL, "ValueError")
    async for _ in retry_streaming(pipeline, "f", configuration_file=pg_config):
        pass
    retried = read_run_log("f", configuration_file=pg_config)
    assert retried.status is Status.SUCCESS
    assert len(retried.steps["flaky"].attempts) == 2


def test_commits_wait_for_the_wal_flush_only_if_asked(pg_dsn: str, tmp_path: Path) -> None:
    for setting, expected in (("", "off"), ("  synchronous_commit: true\n", "on")):
        config = write_config(
            tmp_path / "c.yaml",
            f"run_log_store:\n  type: postgres\n  dsn: '{pg_dsn}'\n{setting}",
        )
        store: Any = store_from_configuration(load_configuration(config))
        shown = store.db.run(lambda conn: conn.execute("SHOW synchronous_commit").fetchone())
        assert shown == (expected,)


async def test_a_newer_schema_is_refused(pg_dsn: str, tmp_path: Path) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE runnable_trio_schema (version integer)")
        conn.execute("INSERT INTO runnable_trio_schema VALUES (%s)", (SCHEMA_VERSION + 1,))
    config = write_config(
        tmp_path / "c.yaml", f"run_log_store:\n  type: postgres\n  dsn: '{pg_dsn}'\n"
    )
    with pytest.raises(RunConfigurationError, match="newer runnable_trio, upgrade"):
        counting().execute_streaming(configuration_file=config)


async def test_the_schema_is_created_once_and_versioned(pg_config: str, pg_dsn: str) -> None:
    await run(counting(), parameters={"n": 1}, configuration_file=pg_config)
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT version FROM runnable_trio_schema").fetchall() == [
            (SCHEMA_VERSION,)
        ]


async def test_a_version_1_database_is_upgraded_and_its_records_read(
    pg_config: str, pg_dsn: str
) -> None:
    async def boom() -> None:
        raise ValueError("boom")

    await run_failing(task("explode", boom), run_id="v1run", configuration_file=pg_config)
    # What a version-1 process wrote: the failed step under its old name, in the record and in
    # the event log's end line; the database at version 1.
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        record = json.loads(conn.execute("SELECT record FROM runnable_trio_runs").fetchone()[0])
        assert record.pop("step") == "explode"
        record["failed_step"] = "explode"
        conn.execute("UPDATE runnable_trio_runs SET record = %s", (json.dumps(record),))
        conn.execute("UPDATE runnable_trio_schema SET version = 1")
        ensure_schema(conn)
        assert conn.execute("SELECT version FROM runnable_trio_schema").fetchall() == [(2,)]
        ensure_schema(conn)  # at its version: nothing to do
    assert SCHEMA_VERSION == 2
    run_log = read_run_log("v1run", configuration_file=pg_config)
    assert (run_log.status, run_log.step) == (Status.FAIL, "explode")


def test_an_unreadable_schema_version_is_refused(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE runnable_trio_schema (version integer)")
        conn.execute("INSERT INTO runnable_trio_schema VALUES (0)")
        with pytest.raises(RunConfigurationError, match="schema version 0, but"):
            ensure_schema(conn)


def test_a_database_that_is_down_fails_the_run_at_its_start(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "c.yaml",
        f"run_log_store:\n  type: postgres\n  dsn: 'host={tmp_path} port=5999 dbname=x'\n"
        "  timeout: 1\n",
    )
    with pytest.raises(RunConfigurationError, match=r"PostgreSQL run-log store .*5999"):
        counting().execute_streaming(configuration_file=config)


async def test_the_pool_recovers_from_a_server_restart(
    pg_config: str, pg_server: PostgresServer
) -> None:
    await run(counting(), parameters={"n": 2}, run_id="before", configuration_file=pg_config)
    await trio.to_thread.run_sync(pg_server.stop)
    await trio.to_thread.run_sync(pg_server.start)
    run_log = await run(
        counting(), parameters={"n": 2}, run_id="after", configuration_file=pg_config
    )
    assert run_log.status is Status.SUCCESS
    assert [s.run_id for s in list_runs(configuration_file=pg_config)] == ["after", "before"]


# The event log and its replay.


async def test_replay_gives_the_events_after_a_number_and_the_run_s_end(pg_config: str) -> None:
    async with counting().stream(
        parameters={"n": 4}, run_id="e", configuration_file=pg_config
    ) as events:
        received = [event async for event in events]
    replayed = [event async for event in replay("e", configuration_file=pg_config)]
    assert replayed == received
    later = replay("e", after=3, configuration_file=pg_config)
    assert [event async for event in later] == received[3:]
    assert later.last_seq == len(received)
    with pytest.raises(RunConfigurationError, match="no event log"):
        replay("nothing", configuration_file=pg_config)


async def test_replay_of_a_run_not_yet_written_waits_for_its_lines(pg_config: str) -> None:
    run_ = counting().execute_streaming(parameters={"n": 2}, configuration_file=pg_config)
    source = replay(run_.run_id, configuration_file=pg_config)  # no line yet: its writer is on
    received = [event async for event in run_]
    with trio.fail_after(60):
        assert [event async for event in source] == received


async def test_replay_of_a_failed_run_ends_with_its_error(pg_config: str) -> None:
    async def broken() -> AsyncIterator[dict[str, Any]]:
        yield {"type": "chunk"}
        raise RuntimeError("crashed")

    await run_failing(task("broken", broken), run_id="b", configuration_file=pg_config)
    source = replay("b", configuration_file=pg_config)
    with pytest.raises(ExecutionFailedError, match="RuntimeError: crashed"):
        async for _ in source:
            pass
    assert source.last_seq > 0


# Several processes.


@pytest.fixture
def child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def start_child(config: str, run_id: str, mode: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.pgchild", config, run_id, mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for child in started:
        child.kill()
        child.wait(30)
        for pipe in (child.stdin, child.stdout):
            if pipe is not None:
                pipe.close()


async def read_line(child: subprocess.Popen[str]) -> str:
    assert child.stdout is not None
    with trio.fail_after(60):
        return (await trio.to_thread.run_sync(child.stdout.readline)).strip()


async def test_replay_follows_a_run_going_in_another_process(
    pg_config: str, child_env: dict[str, str], children: list[subprocess.Popen[str]]
) -> None:
    child = start_child(pg_config, "live", "gated", child_env)
    children.append(child)
    assert child.stdin is not None
    child.stdin.write("go\n")
    child.stdin.flush()
    while not (await read_line(child)).isdigit():
        pass  # the run started; its first events are in
    source = replay("live", configuration_file=pg_config)
    seen: list[dict[str, Any]] = []
    with trio.fail_after(60):
        async for event in source:
            seen.append(event)
            if event.get("type") == "chunk":
                if event["number"] == 3:
                    child.stdin.close()  # the run ends
                else:
                    child.stdin.write("next\n")  # one more event, only once this one is seen
                    child.stdin.flush()
    assert [e["number"] for e in seen if e.get("type") == "chunk"] == [1, 2, 3]
    assert {"type": "done", "count": 3} in [
        {k: v for k, v in e.items() if k != "_meta"} for e in seen
    ]
    assert seen[-1]["type"] == "run.completed"
    assert source.last_seq == len(seen)
    assert child.wait(60) == 0


async def test_a_killed_process_s_run_shows_dead_and_its_retry_completes_it(
    pg_config: str,
    child_env: dict[str, str],
    children: list[subprocess.Popen[str]],
    tmp_path: Path,
) -> None:
    child = start_child(pg_config, "killed", "hang", {**child_env})
    children.append(child)
    while await read_line(child) != "ready":
        pass
    [summary] = list_runs(configuration_file=pg_config)
    assert (summary.status, summary.alive) == (Status.PROCESSING, True)
    with pytest.raises(RunConfigurationError, match="still going"):
        retry_streaming(counting(), "killed", configuration_file=pg_config)
    following = None
    with trio.fail_after(60):
        while following is None:  # its first events reach the database when it is idle
            try:
                following = replay("killed", configuration_file=pg_config)
            except RunConfigurationError:
                await trio.sleep(0.05)
    child.kill()
    child.wait(30)
    # The server ends the dead client's session (and its lock) once it sees the connection
    # closed: soon after the kill, not at the same instant.
    with trio.fail_after(30):
        while (summary := list_runs(configuration_file=pg_config)[0]).alive:
            await trio.sleep(0.01)
    assert (summary.status, summary.alive) == (Status.PROCESSING, False)
    with pytest.raises(ExecutionFailedError, match="its process stopped"), trio.fail_after(60):
        async for _ in following:
            pass
    retry = start_child(pg_config, "killed", "hang", {**child_env, "RETRY": "1"})
    children.append(retry)
    assert retry.wait(60) == 0
    done = read_run_log("killed", configuration_file=pg_config)
    assert done.status is Status.SUCCESS
    assert done.parameters_out["answer"] == 42
    assert (Path.cwd() / "first-calls.txt").read_text().count("called") == 1  # reused


async def test_one_id_is_claimed_by_one_run_only(pg_config: str) -> None:
    runs = [
        counting().execute_streaming(
            parameters={"n": 1}, run_id="same", configuration_file=pg_config, event_log=False
        )
        for _ in range(2)
    ]  # both prepared before either has started: only the database can tell them apart
    results: list[str] = []

    async def drain(one: Any) -> None:
        try:
            async for _ in one:
                pass
            results.append("ok")
        except ExecutionFailedError as exc:
            results.append(str(exc.__cause__))

    async with trio.open_nursery() as nursery:
        for one in runs:
            nursery.start_soon(drain, one)
    assert len(results) == 2
    assert "ok" in results
    [other] = [result for result in results if result != "ok"]
    assert "already exists" in other or "being run by another process" in other


def test_an_event_log_has_one_writer(pg_config: str) -> None:
    store: Any = store_from_configuration(load_configuration(pg_config))
    first = store.open_event_log("one")
    with pytest.raises(RunConfigurationError, match="event log of run 'one' is being written"):
        store.open_event_log("one")
    del first  # never started: its lock is released
    store.open_event_log("one")


async def test_closing_an_event_log_twice_at_once_writes_one_end_line(
    pg_config: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The consumer's end closes the log; aclose() from another task closes it again while
    # the end line's insert is still in its thread (held here, as a slow server would).
    import threading

    from runnable_trio import _pgevents
    from runnable_trio._pgdb import Database

    entered, release = threading.Event(), threading.Event()
    original = Database.call

    class Held:
        def __init__(self, conn: Any) -> None:
            self._conn = conn

        def execute(self, query: Any, params: Any = None) -> Any:
            if query is _pgevents._INSERT and '"end"' in str(params) and not entered.is_set():
                entered.set()
                release.wait(30)
            return self._conn.execute(query, params)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._conn, name)

    async def call(self: Database, function: Any, **kwargs: Any) -> Any:
        return await original(self, lambda conn: function(Held(conn)), **kwargs)

    monkeypatch.setattr(Database, "call", call)
    run = counting().execute_streaming(
        parameters={"n": 3}, run_id="twice", configuration_file=pg_config, event_log=True
    )
    received: list[Any] = []

    async def consume() -> None:
        async for event in run:
            received.append(event)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consume)
        await trio.to_thread.run_sync(entered.wait, 30)
        nursery.start_soon(run.aclose)  # raised UniqueViolation: the end's number twice
        await trio.testing.wait_all_tasks_blocked()
        release.set()
    monkeypatch.setattr(Database, "call", original)
    assert [event async for event in replay("twice", configuration_file=pg_config)] == received
