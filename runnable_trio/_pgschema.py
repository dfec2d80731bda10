"""The PostgreSQL store's tables, created on first use and versioned.

``runnable_trio_schema`` holds one row, the version of the tables and of the records in
them. A process creates the tables when it finds none, and brings an older database up to
its own version (both under a transaction-level advisory lock, so two processes starting
together do not race); it refuses a database whose version is newer than its own, with a
message saying so, rather than failing on records it does not know.

Versions: 1, the first; 2, a failed run's step is recorded under ``step`` (was
``failed_step``) in records and event-log end lines. The tables did not change: rows written
at version 1 are read through ``_runlog.upgrade_run_data``; the bump is what makes a
version-1 process refuse a database where version-2 records are written.

Tables:

- ``runnable_trio_runs``: one row per run, the summary columns ``runs()`` reads and
  ``record``, the run log's JSON snapshot (written when the run starts and when it ends);
- ``runnable_trio_journal``: one row per finished step while the run goes (the file store's
  journal lines), deleted when the final snapshot is in;
- ``runnable_trio_events``: the event log, one row per line (an event with its sequence
  number, or how an attempt ended), numbered per run.
"""

from __future__ import annotations

from typing import Any

import psycopg

from ._errors import RunConfigurationError

__all__ = ["SCHEMA_VERSION", "ensure_schema"]

SCHEMA_VERSION = 2
#: The SQL taking a database from the version before to each version (empty: nothing to do
#: to the tables, see the module docstring).
_UPGRADES: dict[int, str] = {2: ""}
_CREATE_LOCK = 0x72756E74  # "runt": the advisory lock serialising schema creation

_TABLES = """
CREATE TABLE IF NOT EXISTS runnable_trio_runs (
    run_id        text PRIMARY KEY,
    status        text NOT NULL,
    tag           text NOT NULL,
    pipeline_name text NOT NULL,
    started_at    timestamptz NOT NULL,
    ended_at      timestamptz,
    lock_key      bigint NOT NULL,
    record        text NOT NULL
);
CREATE INDEX IF NOT EXISTS runnable_trio_runs_started ON runnable_trio_runs (started_at DESC);
CREATE TABLE IF NOT EXISTS runnable_trio_journal (
    id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id text NOT NULL,
    entry  text NOT NULL
);
CREATE INDEX IF NOT EXISTS runnable_trio_journal_run ON runnable_trio_journal (run_id, id);
CREATE TABLE IF NOT EXISTS runnable_trio_events (
    run_id text NOT NULL,
    n      integer NOT NULL,
    line   text NOT NULL,
    PRIMARY KEY (run_id, n)
);
"""


def ensure_schema(conn: psycopg.Connection[Any]) -> None:
    """Create the tables if there are none; check their version.

    Raises:
        RunConfigurationError: the database holds a newer (or unreadable) schema version.
    """
    version = _read_version(conn)
    if version is None or _older(version):
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_CREATE_LOCK,))
            conn.execute("CREATE TABLE IF NOT EXISTS runnable_trio_schema (version integer)")
            row = conn.execute("SELECT version FROM runnable_trio_schema").fetchone()
            if row is None:
                conn.execute(_TABLES)
                conn.execute(
                    "INSERT INTO runnable_trio_schema (version) VALUES (%s)", (SCHEMA_VERSION,)
                )
                return
            version = row[0]
            if _older(version):
                for step in range(version + 1, SCHEMA_VERSION + 1):
                    if _UPGRADES[step]:
                        conn.execute(_UPGRADES[step])
                conn.execute("UPDATE runnable_trio_schema SET version = %s", (SCHEMA_VERSION,))
                return
    if version != SCHEMA_VERSION:
        newer = isinstance(version, int) and version > SCHEMA_VERSION
        raise RunConfigurationError(
            f"the PostgreSQL database holds runnable_trio schema version {version}, but this "
            f"runnable_trio knows version {SCHEMA_VERSION}"
            + (": it was written by a newer runnable_trio, upgrade this one" if newer else "")
        )


def _older(version: Any) -> bool:
    return type(version) is int and 1 <= version < SCHEMA_VERSION


def _read_version(conn: psycopg.Connection[Any]) -> Any:
    exists = conn.execute("SELECT to_regclass('runnable_trio_schema') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return None
    row = conn.execute("SELECT version FROM runnable_trio_schema").fetchone()
    return None if row is None else row[0]
