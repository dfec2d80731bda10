"""The PostgreSQL run-log store: run logs (and event logs) shared by every process and host.

``run_log_store: {type: postgres, dsn: "postgresql://..."}`` (or ``dsn_env: NAME``, the DSN
read from the environment variable ``NAME`` so no password sits in a file) names it. Its
tables, connections and timeouts are in ``_pgschema`` and ``_pgdb``; this module is the store
protocol over them, laid out as the file store's files are:

- ``create`` takes the run's advisory lock (its liveness), then inserts the run's row with
  the first snapshot; the primary key claims the id, across processes and hosts;
- ``step_finished`` inserts the step's journal row(s) in one statement, committed before the
  run goes on, so a finished step survives the process dying (a retry does not run it again);
  the steps that concurrent runs finish while a commit is on its way share the next one
  (``_pgjournal``);
- ``finish`` (shielded by the runner) writes the final snapshot and status and drops the
  journal rows in one transaction, then releases the lock;
- ``load`` reads the snapshot, and while the run is ``PROCESSING`` places its journal's steps;
  ``runs()`` reads the summary columns only, and liveness from ``pg_locks``.

Durability: each row is committed before the call returns, so what the file store keeps when
its process is killed (SIGKILL included) this store keeps too: the server has it. By default
the store's sessions run with ``synchronous_commit = off``: a commit does not wait for the
server's WAL flush (an fsync: 10-20 ms per step on a loaded disk, against ~1 ms), so a crash
of the *server* (or its host) may lose the last commits it acknowledged, up to three times
``wal_writer_delay`` (0.6 s by default); the database stays consistent (no torn record, a
lost step is run again by a retry). ``synchronous_commit: true`` in the configuration keeps
the server's own setting (``on``): nothing acknowledged is lost even then, at that cost.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg

from ._errors import RunConfigurationError
from ._eventlog import EventLogSink
from ._jsoncodec import loads
from ._offloop import run_blocking
from ._pgdb import HELD, Database, database, lock_key
from ._pgevents import PgEventLog, PgReplay
from ._pgjournal import journal_writer
from ._recordread import read_run
from ._runlog import RunLog, Status, StepLog
from ._steplines import journal_lines, place_journal, run_record
from ._store import RunSummary

__all__ = ["PostgresRunLogStore", "postgres_store"]

DEFAULT_TIMEOUT = 10.0


def postgres_store(
    dsn: str, timeout: float = DEFAULT_TIMEOUT, synchronous_commit: bool = False
) -> PostgresRunLogStore:
    """The store of ``dsn``; connections are shared by every store of this process."""
    return PostgresRunLogStore(database(dsn, timeout, synchronous_commit))


class PostgresRunLogStore:
    """Run logs in a PostgreSQL database (see the module docstring)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._parents_written: dict[str, set[str]] = {}

    def __repr__(self) -> str:
        return repr(self.db)

    # Reading (synchronous, usable outside Trio).

    def exists(self, run_id: str) -> bool:
        row = self.db.run(
            lambda conn: conn.execute(
                "SELECT 1 FROM runnable_trio_runs WHERE run_id = %s", (run_id,)
            ).fetchone()
        )
        return row is not None

    def load(self, run_id: str) -> RunLog:
        """The run's record, with its journal's steps while it is going.

        Raises:
            KeyError: no run with this id.
            RunConfigurationError: the row is not a run log, or the database is unreachable.
        """

        def read(conn: psycopg.Connection[Any]) -> tuple[str, str, list[str]] | None:
            row = conn.execute(
                "SELECT status, record FROM runnable_trio_runs WHERE run_id = %s", (run_id,)
            ).fetchone()
            if row is None:
                return None
            journal: list[str] = []
            if row[0] == Status.PROCESSING:
                journal = [
                    entry
                    for (entry,) in conn.execute(
                        "SELECT entry FROM runnable_trio_journal WHERE run_id = %s ORDER BY id",
                        (run_id,),
                    )
                ]
            return row[0], row[1], journal

        found = self.db.run(read)
        if found is None:
            raise KeyError(run_id)
        _, record, journal = found
        try:
            run_log = _decode(record)
        except Exception as exc:
            message = f"run {run_id!r} in {self!r} is not a run log: {exc}"
            raise RunConfigurationError(message) from exc
        if run_log.status is Status.PROCESSING:
            place_journal(run_log, journal)
        return run_log

    def runs(self) -> list[RunSummary]:
        """Every run, newest first: summary columns only, liveness from ``pg_locks``."""
        rows = self.db.run(
            lambda conn: conn.execute(
                "SELECT run_id, status, tag, pipeline_name, started_at, ended_at, "
                + HELD.format(key="r.lock_key")
                + " FROM runnable_trio_runs r ORDER BY started_at DESC"
            ).fetchall()
        )
        return [
            RunSummary(
                run_id=run_id,
                status=Status(status),
                tag=tag,
                pipeline_name=pipeline_name,
                started_at=started_at.astimezone(dt.UTC),
                ended_at=None if ended_at is None else ended_at.astimezone(dt.UTC),
                alive=bool(alive),
            )
            for run_id, status, tag, pipeline_name, started_at, ended_at, alive in rows
        ]

    def alive(self, run_id: str) -> bool:
        """Whether a process (on any host) is writing this run now: it holds the run's lock."""
        row = self.db.run(
            lambda conn: conn.execute(
                "SELECT " + HELD.format(key="%s"), (lock_key(run_id),)
            ).fetchone()
        )
        return bool(row and row[0])

    # Writing (the runner's side).

    async def create(self, run_log: RunLog) -> None:
        """Claim the id (lock, then row) and store the first snapshot.

        Raises:
            RunConfigurationError: a run with this id exists or is being started elsewhere,
                or the database is unreachable.
        """
        run_id = run_log.run_id
        record = _encode(run_log)

        def insert(conn: psycopg.Connection[Any]) -> None:
            claimed = conn.execute(
                "INSERT INTO runnable_trio_runs (run_id, status, tag, pipeline_name, "
                "started_at, ended_at, lock_key, record) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (run_id) DO NOTHING",
                (
                    run_id,
                    run_log.status.value,
                    run_log.tag,
                    run_log.pipeline_name,
                    run_log.started_at,
                    run_log.ended_at,
                    lock_key(run_id),
                    record,
                ),
            ).rowcount
            if not claimed:
                raise RunConfigurationError(f"a run with id {run_id!r} already exists")

        await run_blocking(self._claim, run_id, insert, limiter=self.db.limiter())
        self._parents_written[run_id] = set()

    async def reopen(self, run_log: RunLog) -> None:
        """A recorded run is retried: its snapshot (PROCESSING again) replaces the old one.

        Raises:
            RunConfigurationError: the run is being run by some process, or is not recorded.
        """
        run_id = run_log.run_id
        record = _encode(run_log)

        def rewrite(conn: psycopg.Connection[Any]) -> None:
            with conn.transaction():
                found = conn.execute(
                    "UPDATE runnable_trio_runs SET status = %s, ended_at = NULL, record = %s "
                    "WHERE run_id = %s",
                    (run_log.status.value, record, run_id),
                ).rowcount
                if not found:
                    raise RunConfigurationError(f"no run with id {run_id!r} to retry")
                conn.execute("DELETE FROM runnable_trio_journal WHERE run_id = %s", (run_id,))

        await run_blocking(self._claim, run_id, rewrite, limiter=self.db.limiter())
        self._parents_written[run_id] = set()

    async def step_finished(self, run_log: RunLog, step: StepLog) -> None:
        """Commit the step's journal row (and its enclosing composites' once) now."""
        written = self._parents_written.get(run_log.run_id)
        if written is None:
            return  # not a run this store started
        # Committed with the steps other runs finish meanwhile, if any (see _pgjournal).
        await journal_writer(self.db).commit(run_log.run_id, journal_lines(run_log, step, written))

    async def finish(self, run_log: RunLog) -> None:
        """Write the final snapshot and status, drop the journal, release the run's lock."""
        run_id = run_log.run_id
        if self._parents_written.pop(run_id, None) is None:
            return

        def write(conn: psycopg.Connection[Any]) -> None:
            with conn.transaction():
                conn.execute(
                    "UPDATE runnable_trio_runs SET status = %s, ended_at = %s, record = %s "
                    "WHERE run_id = %s",
                    (run_log.status.value, run_log.ended_at, _encode(run_log), run_id),
                )
                conn.execute("DELETE FROM runnable_trio_journal WHERE run_id = %s", (run_id,))

        try:
            await self.db.call(write)
        finally:
            await run_blocking(self.db.unlock, lock_key(run_id), limiter=self.db.limiter())

    # The event log (the seam ``_eventlog.open_event_log`` and ``_replay.replay`` use).

    def open_event_log(self, run_id: str) -> EventLogSink:
        """The run's event log, kept in the database (synchronous: read its last number)."""
        return PgEventLog.open(self.db, run_id)

    def replay(self, run_id: str, after: int) -> PgReplay:
        """The run's recorded events after ``after``, following it live in any process.

        Raises:
            RunConfigurationError: no event log for this run.
        """
        return PgReplay.open(self.db, run_id, after)

    def _claim(self, run_id: str, write: Any) -> None:
        """Take the run's lock, then ``write`` its row; the lock is released if that fails."""
        key = lock_key(run_id)
        if not self.db.lock(key):
            raise RunConfigurationError(f"run {run_id!r} is being run by another process")
        try:
            self.db.run(write)
        except BaseException:
            self.db.unlock(key)
            raise


def _encode(run_log: RunLog) -> str:
    # The file store's record text (its summary goes unused here: the columns hold it).
    return run_record(run_log, None)


def _decode(record: str) -> RunLog:
    data = loads(record)
    data.pop("_summary", None)
    return read_run(data)
