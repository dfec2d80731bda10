"""Group commit of the PostgreSQL store's journal rows: concurrent runs share their commits.

A finished step's rows are committed before its run goes on (``_pgstore``'s durability). A
run alone commits each step's rows at once, in one statement, as it always did. Up to
``COMMITS_IN_FLIGHT`` commits of this Trio run go to one database at once; while they are all
on their way, the steps that finish meanwhile in the other runs do not each wait for a
connection and a round trip of their own: they join one batch, which goes in as one statement
as soon as a commit ends. A hundred runs at once then pay a round trip per batch, not one per
step, and the server one commit, one WAL flush under ``synchronous_commit``, per batch. Every
step still returns only once its own rows are committed.

Nothing one run writes can fail another's step. A batch the server refuses for what it holds
(a data or integrity error, not the connection or a timeout, which would fail each of its
steps alone just as well) is tried again one step at a time, so only the step whose rows are
refused fails. A failure that reaches several steps is raised in each as a copy of its own
(one exception object raised in several tasks would collect all their tracebacks).

The commits go from the Trio loop (``_pgloop``), each on a connection of this writer's own:
no worker thread per step. Each connection is opened at first need, up to one per commit in
flight, kept while the Trio run lasts and closed when it ends. A connection that fails is
dropped; where the server ended its session (it restarted), the commit is tried once more on
a new one, as ``_pgdb`` does for its pooled connections.

Cancellation: checked before the step's rows join a batch. Once they have, the step waits for
that batch's commit, shielded, as a statement on its way to the server cannot be taken back:
no longer than one of the commits on their way and its own, each bounded as ``_pgloop``
says.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, final

import psycopg
import trio

from ._errors import RunConfigurationError
from ._pgdb import lost_session
from ._pgloop import LoopConnection, text_array

if TYPE_CHECKING:
    from ._pgdb import Database

__all__ = ["COMMITS_IN_FLIGHT", "JournalWriter", "journal_writer"]

#: Commits of journal rows on their way to one database at once, per Trio run: half the
#: connection pool (``_pgdb``'s eight), the others staying free for runs starting and ending.
#: Several at once keep the server's cores busy; a batch fills while they all are.
COMMITS_IN_FLIGHT = 4

# The batch's rows in the order they joined it (``WITH ORDINALITY``: the identity column,
# which orders a run's journal, follows that order).
_INSERT = (
    "INSERT INTO runnable_trio_journal (run_id, entry) "
    "SELECT run_id, entry FROM unnest($1::text[], $2::text[]) "
    "WITH ORDINALITY AS rows (run_id, entry, n) ORDER BY n"
)


def journal_writer(db: Database) -> JournalWriter:
    """The journal writer of ``db`` in this Trio run (one per database, per run)."""
    return db.in_this_run("journal writer", JournalWriter)


@final
class _Batch:
    """Rows of steps waiting for one commit."""

    __slots__ = ("done", "entries", "error", "run_ids", "steps")

    def __init__(self) -> None:
        self.run_ids: list[str] = []
        self.entries: list[str] = []
        self.steps = 0
        self.done = trio.Event()
        self.error: Exception | None = None


@final
class JournalWriter:
    """Commits journal rows, batching the steps of concurrent runs (module docstring)."""

    __slots__ = ("_ended", "_idle", "_in_flight", "_kept", "_open", "db")

    def __init__(self, db: Database) -> None:
        self.db = db
        self._open: _Batch | None = None  # the batch rows join now, until its commit starts
        self._in_flight = trio.Semaphore(COMMITS_IN_FLIGHT)
        self._idle: list[LoopConnection] = []  # connections no commit uses now
        self._kept = False  # a system task closes the connections when the Trio run ends
        self._ended = False  # the Trio run is ending: connections are closed, not kept

    async def commit(self, run_id: str, entries: list[str]) -> None:
        """Commit ``entries`` as ``run_id``'s journal rows; return once they are committed.

        Raises:
            RunConfigurationError: the database is unreachable or the call timed out.
            psycopg.Error: the server refused these rows.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        batch = self._open
        leads = batch is None
        if batch is None:
            batch = self._open = _Batch()
        batch.run_ids.extend([run_id] * len(entries))
        batch.entries.extend(entries)
        batch.steps += 1
        with trio.CancelScope(shield=True):
            if leads:
                await self._write(batch)
            else:
                await batch.done.wait()
            error = batch.error
            if error is None:
                return
            if batch.steps > 1 and _refused_rows(error):
                # Another step's rows may be what the server refused: this step's alone.
                await self._commit_rows([run_id] * len(entries), entries)
                return
            if leads:
                raise error
            raise self._own_copy(error) from error

    async def _write(self, batch: _Batch) -> None:
        slots = self._in_flight
        try:
            try:
                slots.acquire_nowait()  # a free slot: no wait, no yield
            except trio.WouldBlock:
                await slots.acquire()  # the batch fills while the commits on their way go
            try:
                if self._open is batch:
                    self._open = None  # rows from now on go in the next batch
                await self._commit_rows(batch.run_ids, batch.entries)
            finally:
                slots.release()
        except Exception as exc:
            batch.error = exc
        except BaseException as exc:
            # KeyboardInterrupt or SystemExit in the leader's task: nobody knows whether the
            # rows went in, so no step of the batch may go on as if they had.
            batch.error = RunConfigurationError(
                f"the commit of journal rows to {self.db!r} was interrupted ({type(exc).__name__})"
            )
            raise
        finally:
            batch.done.set()

    async def _commit_rows(self, run_ids: list[str], entries: list[str]) -> None:
        """Insert the rows on a connection of this writer's (once more on a new one if the
        server had ended its session).

        Raises:
            RunConfigurationError: the database is unreachable or the call timed out.
            psycopg.Error: the server refused these rows.
        """
        for attempt in range(2):
            connection = self._idle.pop() if self._idle else None
            try:
                if connection is None:
                    connection = await self._connect()
                await _insert(connection, run_ids, entries)
            except psycopg.OperationalError as exc:
                # Tried once more where the server had ended the session (a connection kept
                # from before it restarted), as _pgdb does for its pooled connections.
                if connection is None or not (connection.lost or lost_session(exc)):
                    raise self.db.error(exc) from exc
                # The session is over, even where libpq has not seen its socket close yet (the
                # server's FATAL came first): neither it nor the kept ones (which went with the
                # server too) are kept. The retry opens a new one.
                connection.close()
                self._close_idle()
                if attempt:
                    raise self.db.error(exc) from exc
                continue
            finally:
                if connection is not None and not connection.closed:
                    self._keep(connection)
            return

    async def _connect(self) -> LoopConnection:
        if not self._kept:
            trio.lowlevel.spawn_system_task(
                self._close_at_the_end, name=f"runnable_trio journal connections to {self.db!r}"
            )
            self._kept = True
        # Twice the timeout: the server's statement_timeout, then the way back.
        return await LoopConnection.open(self.db.conninfo, _INSERT, 2 * self.db.timeout)

    def _keep(self, connection: LoopConnection) -> None:
        if self._ended:
            connection.close()
        else:
            self._idle.append(connection)

    def _close_idle(self) -> None:
        for connection in self._idle:
            connection.close()
        self._idle.clear()

    async def _close_at_the_end(self) -> None:
        try:
            await trio.sleep_forever()
        finally:
            self._ended = True
            self._close_idle()

    def _own_copy(self, error: Exception) -> Exception:
        """A copy of ``error`` to raise in one more task (or, where it cannot be copied,
        the library's error naming it)."""
        try:
            return copy.copy(error)
        except Exception:
            return RunConfigurationError(
                f"the commit of journal rows to {self.db!r} failed: {type(error).__name__}: {error}"
            )


async def _insert(connection: LoopConnection, run_ids: list[str], entries: list[str]) -> None:
    await connection.execute([text_array(run_ids), text_array(entries)])


def _refused_rows(error: Exception) -> bool:
    """Whether the server refused a statement for what it held (not how it was reached)."""
    return isinstance(error, psycopg.DatabaseError) and not isinstance(
        error, psycopg.OperationalError
    )
