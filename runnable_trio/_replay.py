"""``replay()``: the recorded events of a run, from its event log, without running anything.

This is what lets an HTTP client that lost its connection resume from the last event it saw
(SSE's ``Last-Event-ID``): ``replay(run_id, after=seq)`` yields exactly the events numbered
after ``seq``, in order. For a run still going it follows the file as it grows, polling every
``poll_interval`` seconds, until the run's last end line (a retried run has one per attempt);
then, like a live stream, it raises ``ExecutionFailedError`` if the run failed. A log whose
writer is gone without an end line (its process died: the process lock its writer line names
is free) also ends with ``ExecutionFailedError``: a replay is never silently truncated.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import NoReturn

import trio

from ._config import load_configuration
from ._construct import NoPublicConstructor
from ._errors import ExecutionFailedError, RunConfigurationError
from ._eventlog import EventLogEnd, EventLogWriter, Line, decode_line, events_path
from ._events import Event
from ._files import read_from
from ._offloop import run_blocking
from ._runid import validate_run_id
from ._runlog import Status
from ._stores import store_from_configuration
from ._writerlock import writer_alive

__all__ = ["Replay", "replay"]


def replay(
    run_id: str,
    after: int = 0,
    *,
    configuration_file: str = "",
    poll_interval: float = 0.05,
) -> Replay:
    """The events of run ``run_id`` numbered after ``after``, from its event log.

    Args:
        run_id: the run (it must have been run with the event log on).
        after: the sequence number of the last event already seen (0: from the start).
        configuration_file: the configuration the run used (it says where the log is).
        poll_interval: seconds between looks at the file while the run is going.

    Returns:
        An async iterator of event dicts; its ``last_seq`` is the number of the last one.

    Raises:
        RunConfigurationError: at the call, for an invalid id or ``after``, or a run with
            no event log.
    """
    validate_run_id(run_id)
    if isinstance(after, bool) or not isinstance(after, int) or after < 0:
        raise RunConfigurationError(f"after must be an int >= 0 (got {after!r})")
    if not (isinstance(poll_interval, int | float) and poll_interval > 0):
        raise RunConfigurationError(f"poll_interval must be > 0 seconds (got {poll_interval!r})")
    configuration = load_configuration(configuration_file)
    if configuration.run_log_store.type == "postgres":
        # The store keeps the event logs itself (``_pgevents``) and follows a live run by
        # notification; ``poll_interval`` is for files.
        store = store_from_configuration(configuration)
        source: Replay = store.replay(run_id, after)  # type: ignore[attr-defined]
        return source
    folder = configuration.run_log_store.folder
    path = events_path(folder, run_id).absolute()
    if not path.is_file() or path.is_symlink():
        raise RunConfigurationError(
            f"run {run_id!r} has no event log at {str(path)!r} (run it with event_log=True)"
        )
    return Replay._create(run_id, path, after, float(poll_interval))


class Replay(metaclass=NoPublicConstructor):
    """The iterator :func:`replay` returns: ``async for event in replay(run_id, after=n):``.

    Attributes:
        run_id: the run.
        last_seq: the sequence number of the last event yielded (``after`` before the first).
    """

    #: Not final: a store keeping event logs elsewhere subclasses it (``_pgevents.PgReplay``).
    _built_by = "replay()"

    def __init__(self, run_id: str, path: Path, after: int, poll_interval: float) -> None:
        self.run_id = run_id
        self.last_seq = after
        self._path = path
        self._poll_interval = poll_interval
        self._offset = 0
        self._partial = b""
        self._ready: deque[Line] = deque()
        self._writer: str | None = None  # the token of the attempt being read
        self._end: EventLogEnd | None = None  # once reached, every later call ends the same way

    def __aiter__(self) -> Replay:
        return self

    async def __anext__(self) -> Event:
        """The next recorded event, waiting for it while the run is going.

        Cancellation: stops waiting; the replay can be iterated again.
        """
        if self._end is not None:
            self._finish(self._end)
        while True:
            while self._ready:
                record = self._ready.popleft()
                if isinstance(record, EventLogWriter):
                    self._writer = record.token
                elif isinstance(record, EventLogEnd):
                    if not self._ready:  # an end followed by more lines: a retry went on
                        self._finish(record)
                elif record.seq > self.last_seq:
                    self.last_seq = record.seq
                    return record.event
            if not await self._read_more():
                await trio.sleep(self._poll_interval)

    async def _read_more(self) -> bool:
        """Read what the file gained. Returns whether anything did (or the writer is gone)."""
        data, live = await run_blocking(self._read_from_offset)
        self._offset += len(data)
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()  # an incomplete last line waits for the rest
        for line in lines:
            if line:
                self._ready.append(decode_line(line))
        if self._ready:
            return True
        if not live:
            # The writer let go of the file without its end line: its process died.
            raise ExecutionFailedError(
                self.run_id, None, "the event log ends without the run's end (its process stopped)"
            )
        return False

    def _read_from_offset(self) -> tuple[bytes, bool]:
        """The bytes of the log from the offset, and whether its writer still holds it.

        Liveness is checked before reading, so a writer that dies in between is seen with its
        last lines. Before the first line is read the writer is not known yet: live.
        """
        if self._offset == 0:
            live = True
        else:  # (called only once every line read has been handed out)
            live = writer_alive(self._path.parent, self._writer) is not False
        try:
            return read_from(self._path, self._offset), live
        except FileNotFoundError:
            return b"", False  # removed: a run prepared and never started

    def _finish(self, end: EventLogEnd) -> NoReturn:
        self._end = end
        if end.status is not Status.FAIL:
            raise StopAsyncIteration  # succeeded, or cancelled: the consumer left the run
        raise ExecutionFailedError.of(self.run_id, end.step, end.error_type, end.error_message)
