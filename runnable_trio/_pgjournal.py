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

Cancellation: checked before the step's rows join a batch. Once they have, the step waits for
that batch's commit, shielded, as a call running in a worker thread cannot be abandoned
either: no longer than one of the commits on their way and its own, each bounded as ``_pgdb``
says.
"""

from __future__ import annotations

import copy
import functools
from typing import TYPE_CHECKING, Any, final

import psycopg
import trio

from ._errors import RunConfigurationError

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
    "SELECT run_id, entry FROM unnest(%s::text[], %s::text[]) "
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

    __slots__ = ("_in_flight", "_open", "db")

    def __init__(self, db: Database) -> None:
        self.db = db
        self._open: _Batch | None = None  # the batch rows join now, until its commit starts
        self._in_flight = trio.Semaphore(COMMITS_IN_FLIGHT)

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
                await self.db.call(functools.partial(_insert, [run_id] * len(entries), entries))
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
                await self.db.call(functools.partial(_insert, batch.run_ids, batch.entries))
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

    def _own_copy(self, error: Exception) -> Exception:
        """A copy of ``error`` to raise in one more task (or, where it cannot be copied,
        the library's error naming it)."""
        try:
            return copy.copy(error)
        except Exception:
            return RunConfigurationError(
                f"the commit of journal rows to {self.db!r} failed: {type(error).__name__}: {error}"
            )


def _insert(run_ids: list[str], entries: list[str], conn: psycopg.Connection[Any]) -> None:
    conn.execute(_INSERT, (run_ids, entries))


def _refused_rows(error: Exception) -> bool:
    """Whether the server refused a statement for what it held (not how it was reached)."""
    return isinstance(error, psycopg.DatabaseError) and not isinstance(
        error, psycopg.OperationalError
    )
