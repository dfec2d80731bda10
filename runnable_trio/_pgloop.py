"""A PostgreSQL connection driven from the Trio loop, through libpq's non-blocking interface.

``_pgdb``'s pooled connections are used from worker threads. For the one statement on the
path of every step, the journal's ``INSERT`` (``_pgjournal``), the thread cost more than the
statement: a hop to a worker and back, a pool checkout, the GIL handed over twice. Measured
side by side on a loaded machine, a one-row commit took 710 to 1,180 µs through a thread and
160 to 190 µs on the loop. A :class:`LoopConnection` sends its one prepared statement and waits
for the answer with ``trio.lowlevel.wait_writable``/``wait_readable`` on libpq's socket.

Bounded as ``_pgdb``'s calls are: the same connection options (libpq's ``connect_timeout``
and ``tcp_user_timeout``, the server's ``statement_timeout``), and a deadline of twice the
timeout on the whole exchange, for a server that takes the statement and never answers.

On a clock that autojumps (``_offloop``), a task waiting on a socket would look idle and let
virtual time jump: there the connection waits for its socket in the call (``select``), as
every blocking record write runs inline there. Connecting always runs through
``run_blocking`` (a worker thread, or inline on such a clock), once per connection.

A connection whose exchange failed on its way or was interrupted is closed, never used again:
its state is unknown. One whose statement the server refused stays usable.
"""

from __future__ import annotations

import select
import time
from typing import final

import psycopg
import trio
from psycopg import pq

from ._offloop import clock_autojumps, run_blocking

__all__ = ["LoopConnection", "text_array"]

_STATEMENT = b"runnable_trio"  # the prepared statement's name on its connection
_FAILED = (pq.ExecStatus.FATAL_ERROR, pq.ExecStatus.BAD_RESPONSE)


def text_array(items: list[str]) -> bytes:
    """``items`` as a PostgreSQL ``text[]`` literal (a parameter in text form).

    Raises:
        psycopg.DataError: an item holds a NUL character, which no ``text`` value can (and a
            libpq parameter would end at it).
    """
    quoted = [item.replace("\\", "\\\\").replace('"', '\\"') for item in items]
    literal = ('{"' + '","'.join(quoted) + '"}' if items else "{}").encode()
    if b"\x00" in literal:
        raise psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")
    return literal


@final
class LoopConnection:
    """One connection with one prepared statement, executed from the Trio loop."""

    __slots__ = ("_limit", "_pgconn", "lost")

    def __init__(self, pgconn: pq.abc.PGconn, limit: float) -> None:
        self._pgconn = pgconn
        self._limit = limit
        #: The connection failed on libpq's side (the server went away), not by a deadline
        #: or an interruption of ours.
        self.lost = False

    @classmethod
    async def open(cls, conninfo: str, statement: str, limit: float) -> LoopConnection:
        """Connect and prepare ``statement`` (its parameters ``$1``, ``$2``...); its
        executions get ``limit`` seconds each (see the module docstring).

        Raises:
            psycopg.OperationalError: the server cannot be reached.
            psycopg.Error: the server refused the statement.
        """
        return cls(await run_blocking(_connect, conninfo, statement.encode()), limit)

    @property
    def closed(self) -> bool:
        return self._pgconn.status != pq.ConnStatus.OK

    def close(self) -> None:
        self._pgconn.finish()

    async def execute(self, params: list[bytes]) -> None:
        """Execute the prepared statement with ``params`` (in text form); wait for its end.

        Raises:
            psycopg.OperationalError: the connection failed, or no answer came within twice
                the timeout (the connection is then closed).
            psycopg.Error: the server refused the statement (the connection stays usable).

        Cancellation: as the caller's scope says; a cancelled exchange closes the connection.
        """
        pgconn = self._pgconn
        inline = clock_autojumps()
        until = time.monotonic() + self._limit
        refused: psycopg.Error | None = None
        try:
            with trio.move_on_after(self._limit) as scope:
                pgconn.send_query_prepared(_STATEMENT, params)
                while pgconn.flush():
                    await self._ready(writable=True, inline=inline, until=until)
                while True:
                    pgconn.consume_input()
                    while pgconn.is_busy():
                        await self._ready(writable=False, inline=inline, until=until)
                        pgconn.consume_input()
                    result = pgconn.get_result()
                    if result is None:
                        break
                    if result.status in _FAILED and refused is None:
                        refused = _error(result)
            if scope.cancelled_caught:
                raise self._no_answer()
        except BaseException as exc:
            self.lost = isinstance(exc, psycopg.OperationalError) and self.closed
            self.close()
            raise
        if refused is not None:
            if self.closed:  # the server ended the session with this error
                self.lost = True
                self.close()
            raise refused

    async def _ready(self, *, writable: bool, inline: bool, until: float) -> None:
        fd = self._pgconn.socket
        if not inline:
            if writable:
                await trio.lowlevel.wait_writable(fd)
            else:
                await trio.lowlevel.wait_readable(fd)
            return
        left = max(0.0, until - time.monotonic())
        if writable:
            ready = select.select((), (fd,), (), left)[1]
        else:
            ready = select.select((fd,), (), (), left)[0]
        if not ready:
            raise self._no_answer()

    def _no_answer(self) -> psycopg.OperationalError:
        return psycopg.OperationalError(f"no answer from the server within {self._limit:g} s")


def _connect(conninfo: str, statement: bytes) -> pq.abc.PGconn:
    pgconn = pq.PGconn.connect(conninfo.encode())
    try:
        if pgconn.status != pq.ConnStatus.OK:
            raise psycopg.OperationalError(_text(pgconn.error_message))
        result = pgconn.prepare(_STATEMENT, statement)
        if result.status in _FAILED:
            raise _error(result)
        pgconn.nonblocking = 1
    except BaseException:
        pgconn.finish()
        raise
    return pgconn


def _error(result: pq.abc.PGresult) -> psycopg.Error:
    """The error a failed result stands for, of psycopg's class for its SQLSTATE (one libpq
    made itself has none: the connection failed)."""
    state = result.error_field(pq.DiagnosticField.SQLSTATE)
    kind: type[psycopg.Error] = psycopg.OperationalError
    if state:
        try:
            kind = psycopg.errors.lookup(state.decode())
        except KeyError:
            kind = psycopg.DatabaseError
    return kind(_text(result.error_message), info=result)


def _text(message: bytes) -> str:
    return message.decode(errors="replace").strip()
