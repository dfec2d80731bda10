"""The event log: every event of a run, with its sequence number, in a JSON-lines file.

Asked for with ``event_log=True`` (or ``event_log: true`` in the configuration file), a run
writes ``<run log folder>/<run_id>.events.jsonl``: one line per event as the consumer received
it, ``{"seq": 7, "event": {...}}``, and a last line saying how the run ended,
``{"end": {"status": "FAIL", "step": ..., "error_type": ..., "error_message": ...}}``.
``replay()`` (``_replay``) reads it back, for a finished run or one still going.

The consumer side of the stream appends, because that is where the sequence number is final.
Appending only encodes the line; lines are written in batches by a worker thread: when
:data:`BATCH` lines are waiting, whenever the consumer is about to wait for the next event
(the stream is idle, so nothing is delayed), and when the stream ends. Closing the log writes
what is left and the end line, shielded from cancellation, so no event the consumer received
is lost however it left; the consumer side closes it from one place, once the run has ended
(``_stream.EventStream._finish``). One way out has no Trio left to close it: an
``execute_streaming()`` iterator still referenced when ``trio.run`` itself has ended (held by
the traceback of an exception raised out of the loop over it): the events after the last
batch written, and the end line, are then missing, as after a crash; a reader (``replay``)
sees a log whose writer is gone. ``aclose()`` (``contextlib.aclosing``) avoids it.

No descriptor is held while the run goes: each batch is an open-append-close in the worker
thread (``_files``), so a process runs any number of logged runs under its descriptor limit.
Liveness is the writer's token: the first line of each attempt, ``{"writer": "<token>"}``,
names the process lock (``_writerlock.writer_lock``) of the process writing it; a reader that
finds that lock free knows the writer is gone. A new run's log is created new when the run is
prepared (a file or symlink already there fails the call); a retry's writer line is appended
when the retry starts.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Protocol

import attrs
import trio

from ._convert import converter
from ._errors import RunConfigurationError
from ._files import append_line, create_new, make_folder, read_from
from ._jsoncodec import dumps, loads
from ._offloop import run_blocking
from ._runlog import RunLog, Status, upgrade_run_data
from ._writerlock import writer_lock

__all__ = [
    "BATCH",
    "EventBatch",
    "EventLog",
    "EventLogEnd",
    "EventLogSink",
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
    step: str | None = None
    error_type: str | None = None
    error_message: str | None = None

    @classmethod
    def of(cls, run_log: RunLog) -> EventLogEnd:
        """The end line of a run whose status is final."""
        return cls(
            status=run_log.status,
            step=run_log.step,
            error_type=run_log.error_type,
            error_message=run_log.error_message,
        )


@attrs.frozen
class EventLogWriter:
    """The first line of each attempt of a run: the token of the process writing it."""

    token: str


Line = EventRecord | EventLogEnd | EventLogWriter


def encode_record(record: Line) -> str:
    """The JSON line (without its newline) of a record."""
    if isinstance(record, EventRecord):
        return dumps({"seq": record.seq, "event": record.event})
    if isinstance(record, EventLogWriter):
        return dumps({"writer": record.token})
    return dumps({"end": converter.unstructure(record)})


def decode_line(line: str | bytes) -> Line:
    """A record from its JSON line. Raises ``ValueError`` if the line is not one."""
    data = loads(line)
    if not isinstance(data, dict):
        raise ValueError(f"not an event log line: {line!r}")
    try:
        if "end" in data:
            return converter.structure(upgrade_run_data(data["end"]), EventLogEnd)
        if "writer" in data:
            if not isinstance(data["writer"], str):
                raise TypeError("the writer must be a str")
            return EventLogWriter(data["writer"])
        return converter.structure(data, EventRecord)
    except Exception as exc:
        raise ValueError(f"not an event log line: {line!r} ({exc})") from exc


class EventBatch:
    """The batching every event log shares: lines queued by the consumer side, flushed in
    batches by the log's own ``flush``; closed once its end line is written.

    :meth:`close` writes the end line once, however many callers close the log and however
    they overlap: a call that comes while another is writing waits for that one to finish.
    """

    def __init__(self) -> None:
        self._closed = False
        self._closing: trio.Event | None = None
        self._lines: list[str] = []

    async def close(self, run_log: RunLog) -> None:
        """Write what is queued and the end line (see :meth:`_close`). Idempotent.

        Cancellation: shielded; it returns once the log is closed.
        """
        with trio.CancelScope(shield=True):
            if self._closing is not None:
                await self._closing.wait()
                return
            self._closing = trio.Event()
            try:
                await self._close(run_log)
            finally:
                self._closing.set()

    async def _close(self, run_log: RunLog) -> None:
        """The log's own closing: called once, shielded."""
        raise NotImplementedError

    @property
    def closed(self) -> bool:
        return self._closed

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


class EventLog(EventBatch):
    """A run's event log. Made by :meth:`open`, appended by the stream's consumer side.

    Nothing is written before :meth:`start` (the run has claimed its record): a run that
    never starts leaves no log behind.

    Attributes:
        path: the file.
        start_seq: the last sequence number already in the file (0 for a new run; a retried
            run numbers on from there).
    """

    def __init__(self, path: Path, start_seq: int, *, created: bool) -> None:
        self.path = path
        self.start_seq = start_seq
        self._created = created  # a new run's log, made by open(): removed if never started
        self._started = False
        super().__init__()
        self._limiter = trio.CapacityLimiter(1)

    @classmethod
    def open(cls, folder: str | os.PathLike[str], run_id: str, *, retry: bool = False) -> EventLog:
        """The event log of ``run_id``: created new for a run, the existing one for a retry.

        A new run's log is created now with its writer line. Synchronous.

        Raises:
            RunConfigurationError: something is already where a new run's log goes (a
                symlink included), or the file cannot be made or read.
        """
        path = events_path(Path(folder).absolute(), run_id)
        try:
            make_folder(path.parent)
            if not retry:
                token = writer_lock(path.parent).token
                create_new(path, (encode_record(EventLogWriter(token)) + "\n").encode())
                return cls(path, 0, created=True)
            try:
                start_seq = _last_seq(path)
            except FileNotFoundError:  # the run was run without its event log
                create_new(path)
                start_seq = 0
        except OSError as exc:
            raise RunConfigurationError(
                f"cannot open the event log: {exc.strerror or exc}"
            ) from exc
        return cls(path, start_seq, created=False)

    def start(self) -> None:
        """The run has claimed its record: the log is now its own. Synchronous, short.

        A retry's writer line is appended here.
        """
        if self._started or self._closed:
            return
        self._started = True
        if not self._created:
            token = writer_lock(self.path.parent).token
            append_line(self.path, (encode_record(EventLogWriter(token)) + "\n").encode())

    async def flush(self) -> None:
        """Write the queued lines in a worker thread (an open-append-close there).

        Cancellation: shielded once the lines are taken, so batches reach the file in the
        order they were taken, whatever else flushes meanwhile.
        """
        if not self._lines or self._closed or not self._started:
            return
        lines, self._lines = self._lines, []
        data = ("\n".join(lines) + "\n").encode()
        with trio.CancelScope(shield=True):
            await run_blocking(append_line, self.path, data, limiter=self._limiter)

    async def _close(self, run_log: RunLog) -> None:
        """Write what is queued and the end line.

        A log whose run never started is removed (a new run's) or left as it was.
        """
        if self._closed:
            return
        if not self._started:
            self._discard()
            return
        self._lines.append(encode_record(EventLogEnd.of(run_log)))
        await self.flush()
        self._closed = True

    def _discard(self) -> None:
        self._closed = True
        self._lines.clear()
        if self._created:
            with contextlib.suppress(OSError):
                self.path.unlink()

    def __del__(self) -> None:
        # Never started (a StreamingRun made but not iterated): no log of a run that never ran.
        if not self._closed and not self._started:
            self._discard()


def _last_seq(path: Path) -> int:
    size = os.stat(path, follow_symlinks=False).st_size
    if size == 0:
        return 0
    tail = read_from(path, max(0, size - _TAIL))
    for line in reversed(tail.splitlines()):
        try:
            record = decode_line(line)
        except ValueError:
            continue  # cut short, or the first, partial line of the tail
        if isinstance(record, EventRecord):
            return record.seq
    return 0


class EventLogSink(Protocol):
    """What the stream's consumer side needs of an event log: this file's or a store's own.

    A store that keeps event logs itself (PostgreSQL) has a method
    ``open_event_log(run_id) -> EventLogSink``; :func:`open_event_log` uses it.
    """

    @property
    def start_seq(self) -> int: ...

    def start(self) -> None: ...

    @property
    def closed(self) -> bool: ...

    @property
    def pending(self) -> bool: ...

    @property
    def full(self) -> bool: ...

    def append(self, seq: int, event: dict[str, Any]) -> None: ...

    async def flush(self) -> None: ...

    async def close(self, run_log: RunLog) -> None: ...


def open_event_log(
    store: object, folder: str | os.PathLike[str], run_id: str, *, retry: bool = False
) -> EventLogSink:
    """The event log of ``run_id``: the store's own if it keeps them, else a file in ``folder``.

    Raises:
        RunConfigurationError: the log cannot be opened, or another process writes it.
    """
    opener = getattr(store, "open_event_log", None)
    if opener is not None:
        sink: EventLogSink = opener(run_id)
        return sink
    return EventLog.open(folder, run_id, retry=retry)
