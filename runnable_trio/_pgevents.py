"""The event log in PostgreSQL: written by the running process, replayed live by any other.

Lines are those of the file event log (``_eventlog``: an event with its sequence number, or
how an attempt ended), one row each in ``runnable_trio_events``, numbered per run. The writer
(:class:`PgEventLog`) batches as the file log does (a batch when :data:`BATCH` lines wait, when
the consumer is idle, and at the end) and inserts each batch with a ``pg_notify`` on the
run's channel in the same statement, so the rows and the notification arrive together.

A reader (:class:`PgReplay`) ``LISTEN``s on that channel on a connection of its own before it
first reads, then reads the rows after the last it has and, when there are none, waits for a
notification: on the connection's socket (``trio.lowlevel.wait_readable``), no thread and no
polling. The one periodic look is for a writer that died without its end line (no one would
notify then): every :data:`LIVENESS_INTERVAL` seconds of silence it checks the log's
advisory lock, which the writer holds from ``open`` until its end line is in.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import psycopg
import trio

from ._errors import ExecutionFailedError, RunConfigurationError
from ._eventlog import EventBatch, EventLogEnd, decode_line, encode_record
from ._offloop import run_blocking
from ._pgdb import HELD, Database, lock_key
from ._replay import Replay
from ._runlog import RunLog, Status

__all__ = ["LIVENESS_INTERVAL", "PgEventLog", "PgReplay", "channel_of"]

LIVENESS_INTERVAL = 1.0
_READ_LIMIT = 1000

_INSERT = """WITH added AS (
    INSERT INTO runnable_trio_events (run_id, n, line)
    SELECT %s, %s + number, line FROM unnest(%s::text[]) WITH ORDINALITY AS t(line, number))
SELECT pg_notify(%s, '')"""


def channel_of(run_id: str) -> str:
    """The ``LISTEN`` channel of a run's event log (an identifier, from a hash of the id)."""
    return f"runnable_trio_{lock_key(run_id) & (2**64 - 1):016x}"


class PgEventLog(EventBatch):
    """A run's event log in the database, appended by the stream's consumer side.

    Attributes:
        start_seq: the last sequence number already recorded (a retry numbers on from it).
    """

    def __init__(self, db: Database, run_id: str, last_line: int, start_seq: int) -> None:
        # Made by ``open`` only, which holds the log's lock for it.
        self.start_seq = start_seq
        self._db = db
        self._run_id = run_id
        self._channel = channel_of(run_id)
        self._next_line = last_line
        self._wrote = False
        super().__init__()
        self._limiter = trio.CapacityLimiter(1)

    @classmethod
    def open(cls, db: Database, run_id: str) -> PgEventLog:
        """Take the log's lock and read where it ends (synchronous).

        The lock tells a replay the writer is there (it is released once the end line is in).

        Raises:
            RunConfigurationError: another process writes this log, or the database is
                unreachable.
        """
        key = lock_key(run_id, "events")
        if not db.lock(key):
            raise RunConfigurationError(f"the event log of run {run_id!r} is being written")

        def last(conn: psycopg.Connection[Any]) -> tuple[int, int]:
            row = conn.execute(
                "SELECT coalesce(max(n), 0), coalesce(max((line::json ->> 'seq')::int), 0) "
                "FROM runnable_trio_events WHERE run_id = %s",
                (run_id,),
            ).fetchone()
            return (row[0], row[1]) if row else (0, 0)

        try:
            last_line, start_seq = db.run(last)
        except BaseException:
            db.unlock(key)
            raise
        return cls(db, run_id, last_line, start_seq)

    def start(self) -> None:
        """The run has claimed its record (nothing to do: ``open`` took the log's lock)."""

    async def flush(self) -> None:
        """Insert the queued lines and notify followers, in a worker thread.

        Cancellation: shielded once the lines are taken, so they are inserted in the order
        and under the numbers they were taken with, whatever else flushes meanwhile.
        """
        if not self._lines or self._closed:
            return
        lines, self._lines = self._lines, []
        first = self._next_line
        self._next_line = first + len(lines)
        with trio.CancelScope(shield=True):
            await self._db.call(
                lambda conn: conn.execute(_INSERT, (self._run_id, first, lines, self._channel)),
                limiter=self._limiter,
            )
        self._wrote = True

    async def _close(self, run_log: RunLog) -> None:
        """Insert what is queued and the end line.

        A run that never started (its id was taken, or it is being run elsewhere) has no
        events and is still ``PROCESSING``: nothing is written, the log is another run's.
        """
        if self._closed:
            return
        if self._wrote or self._lines or run_log.status is not Status.PROCESSING:
            self._lines.append(encode_record(EventLogEnd.of(run_log)))
        try:
            await self.flush()
        finally:
            self._closed = True
            key = lock_key(self._run_id, "events")
            await run_blocking(self._db.unlock, key, limiter=self._limiter)

    def __del__(self) -> None:
        # Never started (a StreamingRun made but not iterated): release the lock.
        if not self._closed:
            self._closed = True
            self._db.unlock(lock_key(self._run_id, "events"))


class PgReplay(Replay):
    """:func:`~runnable_trio.replay` over the database: the same iterator, fed by rows.

    The base class's ``__anext__`` does the numbering and the ending; this class only says
    how more lines arrive (``_read_more``).
    """

    def __init__(self, db: Database, run_id: str, after: int) -> None:
        # Not the file replay's state: no path, no offset; ``_poll_interval`` is 0 because
        # ``_read_more`` does the waiting itself.
        self.run_id = run_id
        self.last_seq = after
        self._poll_interval = 0.0
        self._ready = deque()
        self._writer = None
        self._end = None
        self._db = db
        self._channel = channel_of(run_id)
        self._line = 0
        self._listener: psycopg.Connection[Any] | None = None

    @classmethod
    def open(cls, db: Database, run_id: str, after: int) -> PgReplay:
        """Check that the run has an event log, or a writer about to write one (synchronous).

        Raises:
            RunConfigurationError: no event log recorded for the run.
        """
        # A log with no line yet is there if its writer is (it writes when it is idle).
        found = db.run(
            lambda conn: conn.execute(
                "SELECT EXISTS (SELECT 1 FROM runnable_trio_events WHERE run_id = %s) OR "
                + HELD.format(key="%s"),
                (run_id, lock_key(run_id, "events")),
            ).fetchone()
        )
        if not (found and found[0]):
            raise RunConfigurationError(
                f"run {run_id!r} has no event log in {db!r} (run it with event_log=True)"
            )
        return cls._create(db, run_id, after)

    async def _read_more(self) -> bool:
        """Read the lines after the last one read, waiting for a notification if none.

        Cancellation: stops waiting; nothing read is lost (lines are numbered).
        """
        if self._listener is None or self._listener.closed:
            self._listener = await run_blocking(self._listen, limiter=self._db.limiter())
        while True:
            # Liveness first, so a writer that ends in between is seen with its last lines.
            lines, live = await self._db.call(self._read)
            for n, line in lines:
                self._line = n
                self._ready.append(decode_line(line))
            if len(lines) == _READ_LIMIT and self._end_reached():
                continue  # an end with more lines after it: a retry went on, read them too
            if self._ready:
                if self._end_reached():
                    self._stop_listening()
                return True
            if not live:
                self._stop_listening()
                raise ExecutionFailedError(
                    self.run_id,
                    None,
                    "the event log ends without the run's end (its process stopped)",
                )
            await self._wait_for_notification()

    def _end_reached(self) -> bool:
        last = self._ready[-1]
        return isinstance(last, EventLogEnd)

    def _read(self, conn: psycopg.Connection[Any]) -> tuple[list[tuple[int, str]], bool]:
        row = conn.execute(
            "SELECT " + HELD.format(key="%s"), (lock_key(self.run_id, "events"),)
        ).fetchone()
        lines = conn.execute(
            "SELECT n, line FROM runnable_trio_events WHERE run_id = %s AND n > %s "
            "ORDER BY n LIMIT %s",
            (self.run_id, self._line, _READ_LIMIT),
        ).fetchall()
        return lines, bool(row and row[0])

    def _listen(self) -> psycopg.Connection[Any]:
        conn = self._db.connect_listener()
        conn.execute(psycopg.sql.SQL("LISTEN {}").format(psycopg.sql.Identifier(self._channel)))
        return conn

    async def _wait_for_notification(self) -> None:
        listener = self._listener
        assert listener is not None
        with trio.move_on_after(LIVENESS_INTERVAL):
            await trio.lowlevel.wait_readable(listener.fileno())
        try:
            listener.pgconn.consume_input()
            while listener.pgconn.notifies() is not None:
                pass
        except psycopg.Error:
            self._stop_listening()  # the server went away: listen again on the next read
            self._listener = await run_blocking(self._listen, limiter=self._db.limiter())

    def _stop_listening(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def __del__(self) -> None:
        self._stop_listening()
