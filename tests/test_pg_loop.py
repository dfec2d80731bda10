"""The journal's connections driven from the Trio loop (``_pgloop``), against a real server:
hostile values, a refused statement, a server that stops answering or restarts, virtual time,
and the connections' end with the Trio run.
"""

from __future__ import annotations

import os
import signal
from typing import Any

import psycopg
import pytest
import trio
import trio.testing

from runnable_trio import AsyncPipeline, AsyncPythonTask, Status, _pgjournal, read_run_log
from runnable_trio._config import load_configuration
from runnable_trio._pgjournal import COMMITS_IN_FLIGHT, journal_writer
from runnable_trio._pgloop import LoopConnection, text_array
from runnable_trio._stores import store_from_configuration
from tests.helpers import run
from tests.pgserver import PostgresServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

_ECHO = "SELECT $1::text[]"


def conninfo(dsn: str) -> str:
    from runnable_trio._pgdb import database

    return database(dsn, 10.0).conninfo


async def give(value: int) -> int:
    return value + 1


def chain(length: int) -> AsyncPipeline:
    return AsyncPipeline(
        steps=[AsyncPythonTask(f"s{i}", give, returns=["value"]) for i in range(length)]
    )


def journal_connections(dsn: str) -> int:
    """Sessions of the test's database that prepared the journal's statement."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND query LIKE 'INSERT INTO runnable_trio_journal%'"
        ).fetchone()
    assert row is not None
    return int(row[0])


HOSTILE = [
    "",
    '"',
    "\\",
    '\\"',
    "{}",
    "{a,b}",
    ",",
    "NULL",
    "null",
    " spaced ",
    "\t\n\r",
    '{"json": "va\\"lue", "list": [1, 2]}',
    "é中😀",
    "\\\\\\",
]


async def test_text_arrays_reach_the_server_as_they_were(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE echo (n serial, items text[])")
    connection = await LoopConnection.open(
        conninfo(pg_dsn), "INSERT INTO echo (items) VALUES ($1::text[])", 20.0
    )
    for items in (HOSTILE, [], [""], *([item] for item in HOSTILE)):
        await connection.execute([text_array(items)])
    connection.close()
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        rows = [items for (items,) in conn.execute("SELECT items FROM echo ORDER BY n")]
    assert rows == [HOSTILE, [], [""], *([item] for item in HOSTILE)]


def test_a_nul_character_is_refused_before_it_is_sent() -> None:
    with pytest.raises(psycopg.DataError, match="NUL"):
        text_array(["a\x00b"])


async def test_a_refused_statement_leaves_the_connection_usable(pg_dsn: str) -> None:
    connection = await LoopConnection.open(conninfo(pg_dsn), "SELECT 1 / $1::int", 20.0)
    with pytest.raises(psycopg.errors.DivisionByZero):
        await connection.execute([b"0"])
    assert not connection.closed
    await connection.execute([b"1"])
    connection.close()


async def test_a_server_that_stops_answering_fails_the_call_within_its_limit(
    pg_dsn: str,
) -> None:
    connection = await LoopConnection.open(conninfo(pg_dsn), _ECHO, 0.5)
    backend = connection._pgconn.backend_pid
    os.kill(backend, signal.SIGSTOP)  # the server holds the connection and says nothing
    try:
        with trio.fail_after(30):
            with pytest.raises(psycopg.OperationalError, match=r"no answer .* within 0\.5 s"):
                await connection.execute([text_array(["x"])])
    finally:
        os.kill(backend, signal.SIGCONT)
    assert connection.closed  # its state is unknown: never used again
    assert not connection.lost  # not a lost session: the journal does not try again


async def test_a_cancelled_exchange_closes_its_connection(pg_dsn: str) -> None:
    connection = await LoopConnection.open(conninfo(pg_dsn), "SELECT pg_sleep($1::float)", 20.0)
    with trio.move_on_after(0.2):
        await connection.execute([b"5"])
    assert connection.closed


async def test_every_kept_connection_is_replaced_after_the_server_restarts(
    pg_config: str, pg_server: PostgresServer
) -> None:
    store: Any = store_from_configuration(load_configuration(pg_config))
    writer = journal_writer(store.db)
    await run(chain(1), parameters={"value": 0}, run_id="first", configuration_file=pg_config)
    # Several connections kept, as concurrent runs leave them.
    held = [await writer._connect() for _ in range(COMMITS_IN_FLIGHT)]
    for connection in held:
        writer._keep(connection)
    assert len(writer._idle) == COMMITS_IN_FLIGHT + 1
    await trio.to_thread.run_sync(pg_server.stop)
    await trio.to_thread.run_sync(pg_server.start)
    record = await run(
        chain(3), parameters={"value": 0}, run_id="after", configuration_file=pg_config
    )
    assert record.status is Status.SUCCESS
    done = read_run_log("after", configuration_file=pg_config)
    assert [done.steps[f"s{i}"].status for i in range(3)] == [Status.SUCCESS] * 3
    assert len(writer._idle) == 1  # the dead ones closed, the new one kept


async def test_a_session_the_server_ended_is_not_kept_though_its_socket_is_still_open(
    pg_config: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store: Any = store_from_configuration(load_configuration(pg_config))
    writer = journal_writer(store.db)
    await run(chain(1), parameters={"value": 0}, run_id="first", configuration_file=pg_config)
    [kept] = writer._idle
    real = _pgjournal._insert
    refused: list[LoopConnection] = []

    async def ended(connection: LoopConnection, run_ids: list[str], entries: list[str]) -> None:
        if not refused:
            # As the server's FATAL 57P01 reads before libpq notices the socket close.
            refused.append(connection)
            raise psycopg.errors.AdminShutdown("terminating connection due to administrator")
        await real(connection, run_ids, entries)

    monkeypatch.setattr(_pgjournal, "_insert", ended)
    record = await run(
        chain(1), parameters={"value": 0}, run_id="after", configuration_file=pg_config
    )
    assert record.status is Status.SUCCESS
    assert refused == [kept]
    assert kept.closed
    assert kept not in writer._idle
    assert len(writer._idle) == 1  # the retry's new connection


def test_a_trio_run_s_journal_connections_end_with_it(pg_config: str, pg_dsn: str) -> None:
    store: Any = store_from_configuration(load_configuration(pg_config))

    async def main() -> Any:
        await run(chain(2), parameters={"value": 0}, run_id="r", configuration_file=pg_config)
        assert journal_connections(pg_dsn) == 1
        return journal_writer(store.db)

    writer = trio.run(main)  # held: nothing but the end of the Trio run closes its connections
    assert writer._idle == []
    # The server sees the session end once its client closed it.
    for _ in range(100):
        if journal_connections(pg_dsn) == 0:
            break
        trio.run(trio.sleep, 0.05)
    assert journal_connections(pg_dsn) == 0


def test_virtual_time_does_not_jump_while_a_commit_waits_for_the_server(pg_config: str) -> None:
    clock = trio.testing.MockClock(autojump_threshold=0)

    async def main() -> float:
        with trio.fail_after(1):  # would expire at once if virtual time jumped
            await run(
                chain(5), parameters={"value": 0}, run_id="virtual", configuration_file=pg_config
            )
        return trio.current_time()

    assert trio.run(main, clock=clock) == 0
    record = read_run_log("virtual", configuration_file=pg_config)
    assert record.status is Status.SUCCESS
    assert record.parameters_out["value"] == 5
