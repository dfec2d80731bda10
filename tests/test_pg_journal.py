"""Group commit of the PostgreSQL store's journal rows (``_pgjournal``), against a real server.

Each test holds every commit that may be on its way at once until the other runs' steps have
joined the next batch (no timing): then it is known which rows share a statement.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import psycopg
import pytest
import trio

from runnable_trio import (
    AsyncPipeline,
    AsyncPythonTask,
    RunConfigurationError,
    Status,
    _pgjournal,
    read_run_log,
)
from runnable_trio._config import load_configuration
from runnable_trio._pgjournal import COMMITS_IN_FLIGHT, JournalWriter, journal_writer
from runnable_trio._stores import store_from_configuration
from tests.helpers import run, run_failing

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


class HeldCommits:
    """``_pgjournal._insert``, recording each statement's run ids once armed; the first
    ``COMMITS_IN_FLIGHT`` (every commit that may be on its way at once) held until released.
    """

    def __init__(self) -> None:
        self.statements: list[list[str]] = []
        self.armed = False
        self.all_held = trio.Event()
        self.release = trio.Event()
        self._real: Callable[..., Awaitable[None]] = _pgjournal._insert

    def arm(self) -> None:
        self.armed = True

    async def __call__(self, connection: Any, run_ids: list[str], entries: list[str]) -> None:
        if self.armed:
            self.statements.append(list(run_ids))
            number = len(self.statements)
            if number <= COMMITS_IN_FLIGHT:
                if number == COMMITS_IN_FLIGHT:
                    self.all_held.set()
                with trio.fail_after(60):  # the test never released the held commits
                    await self.release.wait()
        await self._real(connection, run_ids, entries)

    async def wait_all_held(self) -> None:
        with trio.fail_after(60):
            await self.all_held.wait()

    def later(self) -> list[list[str]]:
        """The statements after the held ones."""
        return self.statements[COMMITS_IN_FLIGHT:]

    def holding(self, run_ids: set[str]) -> list[list[str]]:
        """The statements after the held ones with a row of each of ``run_ids``."""
        return [statement for statement in self.later() if run_ids <= set(statement)]


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Iterator[HeldCommits]:
    insert = HeldCommits()
    monkeypatch.setattr(_pgjournal, "_insert", insert)
    try:
        yield insert
    finally:
        insert.release.set()


def writer_of(config: str) -> JournalWriter:
    store: Any = store_from_configuration(load_configuration(config))
    return journal_writer(store.db)


async def steps_waiting(writer: JournalWriter, count: int) -> None:
    """Until ``count`` steps wait in the batch after the one being committed."""
    with trio.fail_after(120):
        while writer._open is None or writer._open.steps < count:
            await trio.sleep(0.005)


async def give(value: int) -> int:
    return value


def chain(length: int) -> AsyncPipeline:
    return AsyncPipeline(
        steps=[AsyncPythonTask(f"s{i}", give, returns=["value"]) for i in range(length)]
    )


def journal_rows(dsn: str, run_id: str) -> list[str]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return [
            entry
            for (entry,) in conn.execute(
                "SELECT entry FROM runnable_trio_journal WHERE run_id = %s ORDER BY id",
                (run_id,),
            )
        ]


async def test_steps_finished_during_a_commit_go_in_together_in_the_next(
    pg_config: str, held: HeldCommits
) -> None:
    runs, length = COMMITS_IN_FLIGHT + 5, 3
    await run(chain(1), parameters={"value": 0}, run_id="warm", configuration_file=pg_config)
    held.arm()
    writer = writer_of(pg_config)
    logs: dict[str, Any] = {}

    async def one(run_id: str) -> None:
        logs[run_id] = await run(
            chain(length), parameters={"value": 1}, run_id=run_id, configuration_file=pg_config
        )

    async with trio.open_nursery() as nursery:
        for i in range(runs):
            nursery.start_soon(one, f"r{i}")
        await held.wait_all_held()
        await steps_waiting(writer, runs - COMMITS_IN_FLIGHT)
        held.release.set()
    # Each held statement holds one step; every other run's first step went in the next
    # (which a held run's next step may join too, before it is closed).
    first = [run_id for statement in held.statements[:COMMITS_IN_FLIGHT] for run_id in statement]
    assert len(first) == COMMITS_IN_FLIGHT
    # (runs going on in step may share later statements too)
    assert held.holding({f"r{i}" for i in range(runs)} - set(first))
    assert len(held.statements) < runs * length
    for i in range(runs):
        record = read_run_log(f"r{i}", configuration_file=pg_config)
        assert record.status is Status.SUCCESS
        assert [record.steps[f"s{k}"].status for k in range(length)] == [Status.SUCCESS] * 3
        assert logs[f"r{i}"].parameters_out == {"value": 1}


async def test_no_step_of_a_batch_goes_on_before_its_rows_are_committed(
    pg_config: str, pg_dsn: str
) -> None:
    runs, length = 6, 4
    seen: dict[str, list[int]] = {}

    def step() -> Callable[..., Any]:
        async def check(value: int, run_name: str) -> int:
            # The run's earlier steps are in the database when this one starts.
            rows = await trio.to_thread.run_sync(journal_rows, pg_dsn, run_name)
            seen.setdefault(run_name, []).append(len(rows))
            return value

        return check

    pipeline = AsyncPipeline(
        steps=[AsyncPythonTask(f"s{k}", step(), returns=["value"]) for k in range(length)]
    )
    async with trio.open_nursery() as nursery:
        for i in range(runs):
            nursery.start_soon(
                functools.partial(
                    run,
                    pipeline,
                    parameters={"value": i, "run_name": f"d{i}"},
                    run_id=f"d{i}",
                    configuration_file=pg_config,
                )
            )
    for i in range(runs):
        assert seen[f"d{i}"] == list(range(length))


async def test_a_row_the_server_refuses_fails_its_own_run_only(
    pg_config: str, pg_dsn: str, held: HeldCommits
) -> None:
    await run(chain(1), parameters={"value": 0}, run_id="warm", configuration_file=pg_config)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF NEW.entry LIKE '%poison%' THEN RAISE EXCEPTION 'poisoned row'; END IF; "
            "RETURN NEW; END $$"
        )
        conn.execute(
            "CREATE TRIGGER refuse_poison BEFORE INSERT ON runnable_trio_journal "
            "FOR EACH ROW EXECUTE FUNCTION refuse_poison()"
        )
    held.arm()
    writer = writer_of(pg_config)
    outcomes: dict[str, Any] = {}

    async def good(run_id: str) -> None:
        outcomes[run_id] = await run(
            chain(2), parameters={"value": 1}, run_id=run_id, configuration_file=pg_config
        )

    async def bad() -> None:
        outcomes["bad"] = await run_failing(
            task_poison(), run_id="bad", configuration_file=pg_config
        )

    held_runs = [f"h{i}" for i in range(COMMITS_IN_FLIGHT)]
    async with trio.open_nursery() as nursery:
        for run_id in held_runs:
            nursery.start_soon(good, run_id)
        await held.wait_all_held()  # every slot taken: the next steps share a batch
        nursery.start_soon(good, "g1")
        nursery.start_soon(bad)
        nursery.start_soon(good, "g2")
        await steps_waiting(writer, 3)
        held.release.set()
    assert len(held.holding({"bad", "g1", "g2"})) == 1  # one batch, refused whole
    for run_id in (*held_runs, "g1", "g2"):
        assert outcomes[run_id].status is Status.SUCCESS
        assert read_run_log(run_id, configuration_file=pg_config).status is Status.SUCCESS
    cause, bad_log = outcomes["bad"]
    assert isinstance(cause, psycopg.errors.RaiseException)  # the server's own error
    assert "poisoned row" in str(cause)
    assert bad_log.status is Status.FAIL
    assert read_run_log("bad", configuration_file=pg_config).status is Status.FAIL


def task_poison() -> AsyncPipeline:
    async def poison() -> str:
        return "poison"

    return AsyncPythonTask("p", poison, returns=["word"]).as_async_pipeline()


async def test_a_run_left_while_its_rows_wait_for_a_batch_still_commits_them(
    pg_config: str, pg_dsn: str, held: HeldCommits
) -> None:
    await run(chain(1), parameters={"value": 0}, run_id="warm", configuration_file=pg_config)
    held.arm()
    writer = writer_of(pg_config)
    left = trio.CancelScope()
    ended = trio.Event()

    async def leaving() -> None:
        with left:
            await run(
                chain(3), parameters={"value": 1}, run_id="left", configuration_file=pg_config
            )
        ended.set()

    kept = [f"k{i}" for i in range(COMMITS_IN_FLIGHT)]
    async with trio.open_nursery() as nursery:
        for run_id in kept:
            nursery.start_soon(
                functools.partial(
                    run,
                    chain(2),
                    parameters={"value": 1},
                    run_id=run_id,
                    configuration_file=pg_config,
                )
            )
        await held.wait_all_held()
        nursery.start_soon(leaving)
        await steps_waiting(writer, 1)
        left.cancel()  # the run is left while its first step's rows wait in the batch
        await trio.testing.wait_all_tasks_blocked()
        assert not ended.is_set()  # shielded: the step waits for its batch's commit
        held.release.set()
    assert left.cancelled_caught
    assert len(held.holding({"left"})) == 1
    assert journal_rows(pg_dsn, "left") == []  # its final record is in: journal dropped
    record = read_run_log("left", configuration_file=pg_config)
    assert record.status is Status.CANCELLED
    assert record.steps["s0"].status is Status.SUCCESS
    assert "s1" not in record.steps
    for run_id in kept:
        assert read_run_log(run_id, configuration_file=pg_config).status is Status.SUCCESS


async def test_a_batch_the_database_fails_fails_each_of_its_steps_with_an_error_of_its_own(
    pg_config: str, held: HeldCommits, monkeypatch: pytest.MonkeyPatch
) -> None:
    await run(chain(1), parameters={"value": 0}, run_id="warm", configuration_file=pg_config)
    held.arm()
    writer = writer_of(pg_config)
    real = held._real

    async def lost(connection: Any, run_ids: list[str], entries: list[str]) -> None:
        if set(run_ids) & {"x0", "x1", "x2"}:
            raise psycopg.OperationalError("the server is gone")  # as a dropped link is
        await real(connection, run_ids, entries)

    held._real = lost
    outcomes: dict[str, tuple[BaseException, Any]] = {}

    async def failing(run_id: str) -> None:
        outcomes[run_id] = await run_failing(
            chain(2), parameters={"value": 1}, run_id=run_id, configuration_file=pg_config
        )

    held_runs = [f"h{i}" for i in range(COMMITS_IN_FLIGHT)]
    async with trio.open_nursery() as nursery:
        for run_id in held_runs:
            one = functools.partial(run, chain(1), parameters={"value": 1}, run_id=run_id)
            nursery.start_soon(functools.partial(one, configuration_file=pg_config))
        await held.wait_all_held()
        for run_id in ("x0", "x1", "x2"):
            nursery.start_soon(failing, run_id)
        await steps_waiting(writer, 3)
        held.release.set()
    # One statement for the batch: a lost database is not tried again step by step.
    assert sum(1 for statement in held.later() if {"x0", "x1", "x2"} & set(statement)) == 1
    causes = [outcomes[run_id][0] for run_id in ("x0", "x1", "x2")]
    for cause in causes:
        assert isinstance(cause, RunConfigurationError)
        assert "the server is gone" in str(cause)
    assert len({id(cause) for cause in causes}) == 3  # each run's own error object
    for run_id in ("x0", "x1", "x2"):
        assert outcomes[run_id][1].status is Status.FAIL


class _TwoArguments(Exception):
    def __init__(self, first: str, second: str) -> None:
        super().__init__(f"{first} {second}")  # args no longer fit __init__: no copy


def test_an_error_that_cannot_be_copied_reaches_the_other_steps_as_the_library_s() -> None:
    class Db:
        def __repr__(self) -> str:
            return "PostgreSQL 'x'"

    writer = JournalWriter(Db())  # type: ignore[arg-type]
    copied = writer._own_copy(RunConfigurationError("down"))
    assert type(copied) is RunConfigurationError
    assert str(copied) == "down"
    fallback = writer._own_copy(_TwoArguments("a", "b"))
    assert isinstance(fallback, RunConfigurationError)
    expected = "the commit of journal rows to PostgreSQL 'x' failed: _TwoArguments: a b"
    assert str(fallback) == expected


def test_each_database_has_one_journal_writer_per_trio_run() -> None:
    from runnable_trio._pgdb import Database

    first, second = Database("host=/nowhere dbname=a", 1.0), Database("host=/nowhere dbname=b", 1.0)

    async def writers() -> tuple[JournalWriter, ...]:
        return (journal_writer(first), journal_writer(first), journal_writer(second))

    one, again, other = trio.run(writers)
    assert one is again
    assert one.db is first
    assert other.db is second
    assert trio.run(writers)[0] is not one  # a new Trio run, a writer of its own
