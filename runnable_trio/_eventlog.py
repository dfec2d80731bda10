"""The event log: every event of a run, with its sequence number, in a JSON-lines file.

Asked for with ``event_log=True`` (or ``event_log: true`` in the configuration file), a run
writes ``<run log folder>/<run_id>.events.jsonl``: one line per event as the consumer received
it, ``{"seq": 7, "event": {...}}``, and a last line saying how the run ended,
``{"end": {"status": "FAIL", "failed_step": ..., "error_type": ..., "error_message": ...}}``.
``replay()`` (``_replay``) reads it back, for a finished run or one still going.

The consumer side of the stream appends, because that is where the sequence number is final.
Appending only encodes the line; lines are written in batches by a worker thread: when
:data:`BATCH` lines are waiting, whenever the consumer is about to wait for the next event
(the stream is idle, so nothing is delayed), and when the stream ends. Closing the log writes
what is left and the end line, shielded from cancellation, so no event the consumer received
is lost however it left.

While the log is open its process holds an exclusive ``flock`` on the file; a reader that can
take a shared lock knows the writer is gone (finished, or its process died).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Protocol

import attrs
import trio

from ._convert import converter
from ._errors import RunConfigurationError
from ._jsoncodec import dumps, loads
from ._offloop import run_blocking, write_all
from ._runlog import RunLog, Status

if sys.platform != "win32":
    import fcntl

__all__ = [
    "BATCH",
    "EventLog",
    "EventLogEnd",
    "EventLogWriter",
    "EventRecord",
    "decode_line",
    "events_path",
    "open_event_log",
]

BATCH = 256
_TAIL = 1 << 16  # bytes read from the end of an existing log to find its last number


def events_path(folder: str | os.PathLike[str], run_id: str) -> Path:
    return Path(folder) / f"{run_id}.events.jsonl"


@attrs.frozen(kw_only=True)
class EventRecord:
    """One line of an event log: an event and its sequence number in the run."""

    seq: int
    event: dict[str, Any]


@attrs.frozen(kw_only=True)
class EventLogEnd:
    """The last line of an event log: how the run ended."""

    status: Status
    failed_step: str | None = None
    error_type: str | None = None
    error_message: str | None = None


def encode_record(record: EventRecord | EventLogEnd) -> str:
    """The JSON line (without its newline) of a record."""
    if isinstance(record, EventRecord):
        return dumps({"seq": record.seq, "event": record.event})
    return dumps({"end": converter.unstructure(record)})


def decode_line(line: str | bytes) -> EventRecord | EventLogEnd:
    """A record from its JSON line. Raises ``ValueError`` if the line is not one."""
    data = loads(line)
    if not isinstance(data, dict):
        raise ValueError(f"not an event log line: {line!r}")
    try:
        if "end" in data:
            return converter.structure(data["end"], EventLogEnd)
        return converter.structure(data, EventRecord)
    except Exception as exc:
        raise ValueError(f"not an event log line: {line!r} ({exc})") from exc


class EventLog:
    """A run's open event log. Made by :meth:`open`, appended by the stream's consumer side.

    Attributes:
        path: the file.
        start_seq: the last sequence number already in the file (0 for a new run; a retried
            run numbers on from there).
    """

    def __init__(self, path: Path, fd: int, start_seq: int) -> None:
        self.path = path
        self.start_seq = start_seq
        self._fd: int | None = fd
        self._lines: list[str] = []
        self._limiter = trio.CapacityLimiter(1)

    @classmethod
    def open(cls, folder: str | os.PathLike[str], run_id: str) -> EventLog:
        """Open (or create) the event log of ``run_id`` and take its lock. Synchronous.

        Raises:
            RunConfigurationError: the file cannot be opened, or another process writes it.
        """
        path = events_path(folder, run_id)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as exc:
            raise RunConfigurationError(f"cannot open the event log {str(path)!r}: {exc}") from exc
        try:
            if sys.platform != "win32":
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            start_seq = _last_seq(fd)
        except BlockingIOError:
            os.close(fd)
            raise RunConfigurationError(
                f"the event log {str(path)!r} is being written by another run"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        return cls(path, fd, start_seq)

    @property
    def closed(self) -> bool:
        return self._fd is None

    @property
    def pending(self) -> bool:
        """Whether appended lines wait to be written."""
        return bool(self._lines)

    @property
    def full(self) -> bool:
        """Whether a batch is ready to be written."""
        return len(self._lines) >= BATCH

    def append(self, seq: int, event: dict[str, Any]) -> None:
        """Queue one event (encoded now: the consumer may change the dict afterwards)."""
        self._lines.append(dumps({"seq": seq, "event": event}))

    async def flush(self) -> None:
        """Write the queued lines in a worker thread.

        Cancellation: lines not yet handed to the thread stay queued.
        """
        if not self._lines or self._fd is None:
            return
        lines, self._lines = self._lines, []
        data = ("\n".join(lines) + "\n").encode()
        try:
            await run_blocking(write_all, self._fd, data, limiter=self._limiter)
        except trio.Cancelled:
            self._lines[:0] = lines  # the thread never started
            raise

    async def close(self, run_log: RunLog) -> None:
        """Write what is queued and the end line, then release the file. Idempotent.

        Cancellation: shielded; it finishes its (short) writes first.
        """
        if self._fd is None:
            return
        end = EventLogEnd(
            status=run_log.status,
            failed_step=run_log.failed_step,
            error_type=run_log.error_type,
            error_message=run_log.error_message,
        )
        self._lines.append(encode_record(end))
        with trio.CancelScope(shield=True):
            await self.flush()
            fd, self._fd = self._fd, None
            await run_blocking(os.close, fd, limiter=self._limiter)

    def __del__(self) -> None:
        # Never started (a StreamingRun made but not iterated): release the file and lock.
        if self._fd is not None:
            os.close(self._fd)


def _last_seq(fd: int) -> int:
    size = os.fstat(fd).st_size
    if size == 0:
        return 0
    tail = os.pread(fd, min(size, _TAIL), max(0, size - _TAIL))
    for line in reversed(tail.splitlines()):
        try:
            record = decode_line(line)
        except ValueError:
            continue  # cut short, or the first, partial line of the tail
        if isinstance(record, EventRecord):
            return record.seq
    return 0


class EventLogWriter(Protocol):
    """What the stream's consumer side needs of an event log: this file's or a store's own.

    A store that keeps event logs itself (PostgreSQL) has a method
    ``open_event_log(run_id) -> EventLogWriter``; :func:`open_event_log` uses it.
    """

    @property
    def start_seq(self) -> int: ...

    @property
    def closed(self) -> bool: ...

    @property
    def pending(self) -> bool: ...

    @property
    def full(self) -> bool: ...

    def append(self, seq: int, event: dict[str, Any]) -> None: ...

    async def flush(self) -> None: ...

    async def close(self, run_log: RunLog) -> None: ...


def open_event_log(store: object, folder: str | os.PathLike[str], run_id: str) -> EventLogWriter:
    """The event log of ``run_id``: the store's own if it keeps them, else a file in ``folder``.

    Raises:
        RunConfigurationError: the log cannot be opened, or another process writes it.
    """
    opener = getattr(store, "open_event_log", None)
    if opener is not None:
        writer: EventLogWriter = opener(run_id)
        return writer
    return EventLog.open(folder, run_id)
