"""The PostgreSQL connection layer of the PostgreSQL store: one pool per DSN, per process.

Only ``_pgstore`` and ``_pgevents`` import this module, and only once a configuration names
``run_log_store: {type: postgres}``: nothing of psycopg is imported before (extra
``postgres``: ``pip install 'runnable_trio[postgres]'``).

Driver and concurrency. psycopg 3's async API is asyncio-only, so on Trio its blocking API is
used, in worker threads (``trio.to_thread.run_sync``) bounded by a ``trio.CapacityLimiter``
as large as the pool (a run never has more threads waiting than there are connections). The
journal's commits, on the path of every step, go from the loop instead, on connections of
their own (``_pgloop``, ``_pgjournal``). A thread cannot be interrupted, so every call is
bounded instead: with ``timeout`` seconds
(configuration ``run_log_store.timeout``, default 10) as

- the wait for a free connection of the pool,
- libpq's ``connect_timeout`` and ``tcp_user_timeout`` (a peer that stops answering),
- the server's ``statement_timeout`` and ``lock_timeout``,

a call returns or fails within about three times ``timeout`` (a pool left behind by a
server that was down is replaced once, see ``_checkout``); a cancelled run waits for its
current call no longer than that. A database that is down fails a run when it starts, with an
error naming the server and what libpq said, never a hang.

Liveness. Each process keeps one more connection, outside the pool, holding a session-level
advisory lock for each run it is writing (``pg_try_advisory_lock``). The server drops a
session's locks when its client is gone, so a killed process's runs show dead at once; any
process reads the locks in ``pg_locks`` without taking them.
"""

from __future__ import annotations

import atexit
import hashlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, cast

import psycopg
import psycopg_pool
import trio

from ._errors import RunConfigurationError
from ._offloop import run_blocking
from ._pgschema import ensure_schema

__all__ = ["HELD", "Database", "database", "lock_key", "lost_session"]

#: SQL: whether some session holds the advisory lock of the bigint key ``{key}`` in this
#: database (``pg_locks`` shows every database's; advisory locks are per database).
HELD = """EXISTS (
    SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
    AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
    AND ((l.classid::bigint << 32) | l.objid::bigint) = {key})"""

_T = TypeVar("_T")
_POOL_SIZE = 8

_databases: dict[tuple[str, float, bool], Database] = {}
_databases_lock = threading.Lock()
# What a database keeps per Trio run (its limiter, its journal writer), by its id and a name,
# beside the database itself: a database made later at a reused id is told apart.
_per_run: trio.lowlevel.RunVar[dict[tuple[int, str], tuple[Database, Any]]] = trio.lowlevel.RunVar(
    "runnable_trio_pg_per_run"
)


def database(dsn: str, timeout: float, synchronous_commit: bool = False) -> Database:
    """The process's :class:`Database` for these settings (made on first use, then shared)."""
    key = dsn, timeout, synchronous_commit
    with _databases_lock:
        found = _databases.get(key)
        if found is None:
            if not _databases:
                atexit.register(_close_all)
            found = _databases[key] = Database(dsn, timeout, synchronous_commit)
        return found


def _close_all() -> None:
    """At exit: close the pools and liveness sessions (the server ends their locks)."""
    with _databases_lock:
        for db in _databases.values():
            db.close()
        _databases.clear()


def lock_key(run_id: str, kind: str = "run") -> int:
    """The advisory-lock key of a run's record (or ``kind="events"``: of its event log).

    64 bits of a hash, as a signed bigint; the record and the event log have a lock each
    because the record is finished before the last events are written.
    """
    name = run_id if kind == "run" else f"{kind}\0{run_id}"
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), signed=True)


def lost_session(exc: psycopg.Error) -> bool:
    """Whether the server ended the session (shut down, restarted, connection lost)."""
    state = exc.sqlstate or ""
    return state.startswith(("08", "57P"))


def _pool_limiter(_: Database) -> trio.CapacityLimiter:
    return trio.CapacityLimiter(_POOL_SIZE)


def describe_dsn(dsn: str) -> str:
    """The DSN without its password, for error messages."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "(an invalid DSN)"
    info.pop("password", None)
    return psycopg.conninfo.make_conninfo("", **info)


class Database:
    """A pool of connections to one PostgreSQL database and the process's liveness session."""

    def __init__(self, dsn: str, timeout: float, synchronous_commit: bool = False) -> None:
        self.dsn = dsn
        self.timeout = timeout
        self.name = describe_dsn(dsn)
        milliseconds = int(timeout * 1000)
        options = f"-c statement_timeout={milliseconds} -c lock_timeout={milliseconds}"
        if not synchronous_commit:
            options += " -c synchronous_commit=off"  # see _pgstore's docstring: durability
        libpq: dict[str, Any] = {
            "connect_timeout": max(1, round(timeout)),
            "tcp_user_timeout": milliseconds,
            "options": options,
        }
        #: libpq's connection string for a connection of this database's (``_pgloop``).
        self.conninfo = psycopg.conninfo.make_conninfo(dsn, **libpq)
        self._kwargs: dict[str, Any] = {**libpq, "autocommit": True}
        self._pool: psycopg_pool.ConnectionPool | None = None
        self._pool_lock = threading.Lock()
        self._schema_ready = False
        self._owner: psycopg.Connection[Any] | None = None
        # Re-entrant: an event log collected (``__del__``) while this thread holds it unlocks.
        self._owner_lock = threading.RLock()
        self._held: set[int] = set()

    def __repr__(self) -> str:
        return f"PostgreSQL {self.name!r}"

    # Connections.

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection (autocommit); the schema is checked on first use.

        Raises:
            RunConfigurationError: the server cannot be reached within the timeout, or holds
                a newer schema.
        """
        pool, conn = self._checkout()
        try:
            if not self._schema_ready:
                ensure_schema(conn)
                self._schema_ready = True
            yield conn
        finally:
            pool.putconn(conn)

    def _checkout(self) -> tuple[psycopg_pool.ConnectionPool, psycopg.Connection[Any]]:
        pool = self._open_pool()
        try:
            return pool, pool.getconn(timeout=self.timeout)
        except psycopg_pool.PoolTimeout:
            pass
        # A pool whose connections failed (the server was down) waits out a growing backoff
        # before it tries again: if the server answers now, a new pool serves at once.
        reason = self._probe()
        with self._pool_lock:
            if self._pool is pool:
                pool.close(timeout=0)
                self._pool = None
        if reason:
            raise RunConfigurationError(f"the PostgreSQL run-log store {self.name!r}: {reason}")
        pool = self._open_pool()
        try:
            return pool, pool.getconn(timeout=self.timeout)
        except psycopg_pool.PoolTimeout:
            raise RunConfigurationError(
                f"the PostgreSQL run-log store {self.name!r}: no free connection within "
                f"{self.timeout:g} s"
            ) from None

    def _open_pool(self) -> psycopg_pool.ConnectionPool:
        with self._pool_lock:
            if self._pool is None:
                self._pool = psycopg_pool.ConnectionPool(
                    self.dsn,
                    min_size=1,
                    max_size=_POOL_SIZE,
                    kwargs=self._kwargs,
                    open=True,
                    name="runnable_trio",
                )
            return self._pool

    def _probe(self) -> str:
        """Why a direct connection fails ("" if it does not): libpq's reason."""
        try:
            psycopg.connect(self.dsn, **self._kwargs).close()
        except psycopg.Error as exc:
            return str(exc).strip()
        return ""

    def in_this_run(self, name: str, make: Callable[[Database], _T]) -> _T:
        """This database's ``name`` in the current Trio run: ``make(self)`` on first use."""
        try:
            kept = _per_run.get()
        except LookupError:
            kept = {}
            _per_run.set(kept)
        found = kept.get((id(self), name))
        if found is None or found[0] is not self:
            found = kept[(id(self), name)] = (self, make(self))
        return cast(_T, found[1])

    def limiter(self) -> trio.CapacityLimiter:
        """The threads of this Trio run that may wait on this database at once."""
        return self.in_this_run("limiter", _pool_limiter)

    async def call(
        self,
        function: Callable[[psycopg.Connection[Any]], _T],
        *,
        limiter: trio.CapacityLimiter | None = None,
    ) -> _T:
        """``function(connection)`` in a worker thread, with a pooled connection.

        Raises:
            RunConfigurationError: the database is unreachable or the call timed out.

        Cancellation: checked before the call; once started it finishes (within the
        timeouts of the module docstring).
        """
        return await run_blocking(self.run, function, limiter=limiter or self.limiter())

    def run(self, function: Callable[[psycopg.Connection[Any]], _T]) -> _T:
        """``function(connection)`` in this thread, with a pooled connection.

        Raises:
            RunConfigurationError: the database is unreachable or the call timed out.
        """
        for attempt in range(2):
            try:
                with self.connection() as conn:
                    return function(conn)
            except psycopg.OperationalError as exc:
                # A pooled connection the server dropped (it restarted) is found out here,
                # not by a check per checkout (a round trip per call): the pool's idle
                # connections are checked, and the call is made once more.
                if attempt or not (conn.broken or lost_session(exc)):
                    raise self.error(exc) from exc
                with self._pool_lock:
                    pool = self._pool
                if pool is not None:
                    pool.check()  # the other idle connections went with the server too
        raise AssertionError("unreachable")

    def error(self, exc: BaseException) -> RunConfigurationError:
        """The library's error for a database error, naming the server."""
        return RunConfigurationError(
            f"the PostgreSQL run-log store {self.name!r}: {str(exc).strip()}"
        )

    # Liveness: the advisory locks of the runs this process writes.

    def lock(self, key: int) -> bool:
        """Take an advisory lock in the liveness session. False if anyone holds it already.

        Advisory locks are re-entrant within a session, and this process has one session
        for all its runs: the keys it holds are kept here too, so a second run of this
        process is refused as one of another process is.
        """
        with self._owner_lock:
            if key in self._held:
                return False
            for attempt in range(2):
                conn = self._owner_connection()
                try:
                    row = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
                except psycopg.OperationalError as exc:
                    # The session is gone (the server restarted): so are its locks.
                    self._drop_owner()
                    if attempt:
                        raise self.error(exc) from exc
                    continue
                taken = bool(row and row[0])
                if taken:
                    self._held.add(key)
                return taken
        raise AssertionError("unreachable")

    def unlock(self, key: int) -> None:
        """Release an advisory lock (nothing to do if the session is gone)."""
        with self._owner_lock:
            if key not in self._held:
                return
            self._held.discard(key)
            if self._owner is None or self._owner.closed:
                return
            try:
                self._owner.execute("SELECT pg_advisory_unlock(%s)", (key,))
            except psycopg.OperationalError:
                self._drop_owner()

    def _owner_connection(self) -> psycopg.Connection[Any]:
        if self._owner is None or self._owner.closed or self._owner.broken:
            self._drop_owner()
            try:
                self._owner = psycopg.connect(self.dsn, **self._kwargs)
            except psycopg.OperationalError as exc:
                raise self.error(exc) from exc
        return self._owner

    def _drop_owner(self) -> None:
        self._held.clear()  # the server let go of them with the session
        if self._owner is not None:
            self._owner.close()
            self._owner = None

    def close(self) -> None:
        """Close the pool and the liveness session."""
        with self._pool_lock:
            if self._pool is not None:
                self._pool.close(timeout=1)
                self._pool = None
        with self._owner_lock:
            self._drop_owner()

    def connect_listener(self) -> psycopg.Connection[Any]:
        """A new connection of its own (not pooled), for ``LISTEN``."""
        return psycopg.connect(self.dsn, **self._kwargs)
