"""The file run-log store (the default): JSON files under ``.run_log_store/``.

Design. Rewriting a run's whole record after every step costs more the longer the run (the
reference pays 26 ms per step at 50 steps, 59 ms at 200). Here each run has two files:

- ``<run_id>.json``, a full snapshot of the record, written atomically (a temporary file in
  the same folder, then ``os.link`` for the first one, which also claims the id, or
  ``os.replace`` later): when the run starts, and when it ends;
- ``<run_id>.journal.jsonl``, one JSON line per finished step, appended while the run goes
  and deleted once the final snapshot is in place; the record of a composite step around it
  goes in once, on a line of its own, before the first step inside it.

Reading a run (:meth:`FileRunLogStore.load`) takes the snapshot and, while it still says
``PROCESSING``, places the journal's steps into it by path; a line cut short by a crash is
ignored. So every step is made durable as it ends, at a cost that does not grow with the run,
and a reader never sees half a file. Durable means "survives the process being killed"
(SIGKILL included); files are not fsync'ed, which a power failure could still undo.

The final snapshot, which grows with the run, is written in a worker thread
(``_offloop.run_blocking``). Two small writes are not. A journal line is appended with one
``os.write`` to a file opened ``O_APPEND``, on the event loop, as its step ends. The first
snapshot (definition and initial parameters) is written on the loop too, because nothing may
run, not even the first event, before it has claimed the run id. Such writes land in the page
cache in microseconds, while a hop to a worker thread and back costs 50-300 us (measured on a
busy 2-core machine), more than a small step itself; and a thread that writes later would
leave a finished step undurable while the next one runs (a SIGKILL then loses it, and a retry
runs it again). So these stay on the loop, by design.

The snapshot begins with a small ``"_summary"`` (id, status, tag, name, times, writer), so
:meth:`FileRunLogStore.runs` reads a few hundred bytes of each file, never a whole record.

Liveness and descriptors. No descriptor is held per run (``_files``): a journal line goes
through the process's small pool of append descriptors, and liveness is one lock per process
(``<folder>/.writers/<token>.lock``, held while the process lives) whose token the snapshot
names while the run goes. :meth:`FileRunLogStore.alive` is true while that process holds its
lock, false at once when it dies (SIGKILL included): a retry needs it. Every file a run
creates is created new, never through a symlink (``_files``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs

from ._errors import RunConfigurationError
from ._files import (
    APPENDS,
    describe_os_error,
    locked,
    make_folder,
    read_file,
    read_head,
    replace_atomically,
    reserve_descriptor,
    writer_alive,
    writer_lock,
)
from ._jsoncodec import dumps, loads
from ._offloop import run_blocking
from ._runlog import (
    BranchLog,
    RunLog,
    Status,
    StepLog,
    place_step,
    run_log_to_dict,
)
from ._steplines import read_run, read_step, step_line
from ._store import RunSummary

_SUMMARY = b'{"_summary":'
_HEAD = 4096  # bytes read of a snapshot to find its summary
_DECODER = json.JSONDecoder()
__all__ = ["DEFAULT_FOLDER", "FileRunLogStore"]

DEFAULT_FOLDER = ".run_log_store"


class FileRunLogStore:
    """Run logs as JSON files in ``folder`` (created when the first run starts).

    Args:
        folder: where the files go; relative paths are taken from the working folder when
            the store is made.
    """

    def __init__(self, folder: str | os.PathLike[str] = DEFAULT_FOLDER) -> None:
        self.folder = Path(folder).absolute()
        # The composite records already journaled, per run this store is writing.
        self._journals: dict[str, set[str]] = {}

    def __repr__(self) -> str:
        return f"FileRunLogStore({str(self.folder)!r})"

    def snapshot_path(self, run_id: str) -> Path:
        return self.folder / f"{run_id}.json"

    def journal_path(self, run_id: str) -> Path:
        return self.folder / f"{run_id}.journal.jsonl"

    def exists(self, run_id: str) -> bool:
        path = self.snapshot_path(run_id)
        return path.is_file() and not path.is_symlink()

    async def create(self, run_log: RunLog) -> None:
        """Write the first snapshot, claiming the id atomically, and a new empty journal.

        Raises:
            RunConfigurationError: a run with this id exists (even one started a moment ago
                by another process), or a file is already where the run's journal goes.
            OSError: the files cannot be made (its errno kept; the descriptor limit named).

        Cancellation: not a checkpoint (see the module docstring for why this is inline).
        """
        self._create_files(run_log)
        self._journals[run_log.run_id] = set()

    async def reopen(self, run_log: RunLog) -> None:
        """A recorded run is retried: rewrite its snapshot (now PROCESSING), empty its journal.

        Raises:
            RunConfigurationError: the run is still going in some process.
        """
        APPENDS.forget(self.journal_path(run_log.run_id))
        await run_blocking(self._reopen_files, run_log)
        self._journals[run_log.run_id] = set()

    async def step_finished(self, run_log: RunLog, step: StepLog) -> None:
        """Append the step's line to the run's journal.

        Raises:
            OSError: the line cannot be written; the run fails, its record can no longer be
                kept durable.

        Cancellation: not a checkpoint.
        """
        parents_written = self._journals.get(run_log.run_id)
        if parents_written is None:
            return  # not a run this store started
        lines = []
        for parent in _enclosing(run_log, step.path):
            # A composite step's own record goes in once, before the first line of a step
            # inside it; repeating it on every line would cost a Map of n items n copies.
            if parent.path not in parents_written:
                parents_written.add(parent.path)
                lines.append(step_line(attrs.evolve(parent, branches={}), "parent"))
        if step.branches:
            # The steps inside a composite are in the journal already: its own line says only
            # how each branch ended, and the reader keeps the steps it has placed.
            step = attrs.evolve(
                step, branches={k: BranchLog(k, b.status) for k, b in step.branches.items()}
            )
        lines.append(step_line(step))
        try:
            APPENDS.append(self.journal_path(run_log.run_id), ("\n".join(lines) + "\n").encode())
        except OSError as exc:
            what = f"the run log journal of run {run_log.run_id!r} cannot be written"
            raise describe_os_error(exc, what) from exc

    async def finish(self, run_log: RunLog) -> None:
        """Write the final snapshot atomically, then drop the journal."""
        if self._journals.pop(run_log.run_id, None) is None:
            return
        APPENDS.forget(self.journal_path(run_log.run_id))
        # Encoding a long run's record takes a while: done in the thread too (it is final).
        await run_blocking(self._finish_files, run_log)

    def load(self, run_id: str) -> RunLog:
        """The run's record: the snapshot, with the journal's steps placed in while running.

        Raises:
            KeyError: no run with this id.
            RunConfigurationError: the snapshot is not a run log (or is a symlink).
        """
        path = self.snapshot_path(run_id)
        try:
            text = read_file(path)
        except FileNotFoundError:
            raise KeyError(run_id) from None
        except OSError as exc:
            raise RunConfigurationError(f"cannot read the run log {str(path)!r}: {exc}") from exc
        with _collection_paused():
            try:
                data = loads(text)
                data.pop("_summary", None)
                run_log = read_run(data)
            except Exception as exc:
                raise RunConfigurationError(f"{str(path)!r} is not a run log: {exc}") from exc
            if run_log.status is Status.PROCESSING:
                self._apply_journal(run_log)
        return run_log

    def runs(self) -> list[RunSummary]:
        """Every run in the folder, newest first (each snapshot's summary only is read)."""
        found: list[RunSummary] = []
        alive: dict[Any, bool | None] = {}  # by writer: few processes write many runs
        try:
            entries = os.scandir(self.folder)
        except (FileNotFoundError, NotADirectoryError):
            return found
        with entries:
            names = [entry.name for entry in entries if entry.name.endswith(".json")]
        for name in names:
            summary = _read_summary(self.folder / name)
            if summary is None:
                continue  # not a run log (a stray file), or deleted meanwhile
            try:
                status = Status(summary["status"])
                writer = summary.get("writer")
                if status is not Status.PROCESSING:
                    live: bool | None = False
                else:
                    if writer not in alive:
                        alive[writer] = writer_alive(self.folder, writer)
                    live = alive[writer]
                ended = summary["ended_at"]
                found.append(
                    RunSummary(
                        run_id=summary["run_id"],
                        status=status,
                        tag=summary["tag"],
                        pipeline_name=summary["pipeline_name"],
                        started_at=dt.datetime.fromisoformat(summary["started_at"]),
                        ended_at=None if ended is None else dt.datetime.fromisoformat(ended),
                        alive=live,
                    )
                )
            except (ValueError, KeyError, TypeError):
                continue
        found.sort(key=lambda run: run.started_at, reverse=True)
        return found

    def alive(self, run_id: str) -> bool | None:
        """Whether a process is running this run now (its writer's lock is held)."""
        summary = _read_summary(self.snapshot_path(run_id))
        if summary is None or summary.get("status") != Status.PROCESSING.value:
            return False
        return writer_alive(self.folder, summary.get("writer"))

    # File work (in worker threads, but for _create_files: see the module docstring).

    def _create_files(self, run_log: RunLog) -> None:
        run_id = run_log.run_id
        final = self.snapshot_path(run_id)
        try:
            make_folder(self.folder)
            reserve_descriptor()  # at the limit already: the run fails here, at its start
            data = _encode(run_log, writer_lock(self.folder).token)
            try:
                replace_atomically(final, data, claim=True)  # the claim is atomic
            except FileExistsError:
                if final.is_symlink():
                    raise RunConfigurationError(
                        f"{str(final)!r} is a symlink: a run's files are created new"
                    ) from None
                raise RunConfigurationError(f"a run with id {run_id!r} already exists") from None
            try:
                # Open in the pool: out of descriptors, the run fails now, not at a step.
                APPENDS.create(self.journal_path(run_id))
            except BaseException:
                final.unlink()  # ours, claimed a moment ago: the id is free again
                raise
        except FileExistsError as exc:
            raise RunConfigurationError(f"run {run_id!r} cannot start: {exc.strerror}") from None
        except OSError as exc:
            raise describe_os_error(exc, f"run {run_id!r} cannot start") from exc

    def _reopen_files(self, run_log: RunLog) -> None:
        run_id = run_log.run_id
        journal = self.journal_path(run_id)
        try:
            reserve_descriptor()
            data = _encode(run_log, writer_lock(self.folder).token)
            with locked(journal) as fd:  # retries of one run, one at a time
                if self.alive(run_id) is not False:
                    raise RunConfigurationError(f"run {run_id!r} is being run by another process")
                replace_atomically(self.snapshot_path(run_id), data)
                os.ftruncate(fd, 0)  # the snapshot now holds what the journal held
        except FileExistsError as exc:
            raise RunConfigurationError(
                f"run {run_id!r} cannot be retried: {exc.strerror}"
            ) from None
        except OSError as exc:
            raise describe_os_error(exc, f"run {run_id!r} cannot be retried") from exc

    def _finish_files(self, run_log: RunLog) -> None:
        path = self.snapshot_path(run_log.run_id)
        replace_atomically(path, _encode(run_log, None), reserve=True)
        self.journal_path(run_log.run_id).unlink(missing_ok=True)

    def _apply_journal(self, run_log: RunLog) -> None:
        try:
            lines = read_file(self.journal_path(run_log.run_id)).splitlines()
        except (FileNotFoundError, FileExistsError):
            return
        parents: dict[str, StepLog] = {}
        for line in lines:
            try:
                entry = loads(line)
                if "parent" in entry:
                    parent = read_step(entry["parent"])
                    parents[parent.path] = parent
                    continue
                step = read_step(entry["step"])
            except Exception:
                break  # a line cut short by a crash: the last one
            place_step(run_log, step, parents)


@contextlib.contextmanager
def _collection_paused() -> Iterator[None]:
    """The cyclic garbage collector off while a record is built, then as it was.

    Reading a big record makes millions of objects, none of them garbage, and the collector
    runs over all of them again and again as they are made: with it on, reading a 100,000-item
    Map run took 2.5 times as long (3.8 s against 1.6 s, measured). Records hold no cycles, so
    nothing is left for it to collect afterwards.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _encode(run_log: RunLog, writer: str | None) -> bytes:
    record = run_log_to_dict(run_log)
    summary = {
        key: record[key]
        for key in ("run_id", "status", "tag", "pipeline_name", "started_at", "ended_at")
    }
    summary["writer"] = writer
    return dumps({"_summary": summary, **record}).encode()


def _read_summary(path: Path) -> dict[str, Any] | None:
    """The ``_summary`` at the head of a snapshot (the whole file read only for old ones).

    A summary longer than the head (a long tag) is read with a head four times as long, and
    so on: at most a few times the summary's own length is read, never the record after it.
    """
    try:
        size = _HEAD
        while True:
            head = read_head(path, size)
            if not head.startswith(_SUMMARY):
                summary = loads(read_file(path))  # written before summaries: the record itself
                break
            try:
                summary, _ = _DECODER.raw_decode(head.decode(), len(_SUMMARY))
                break
            except (ValueError, UnicodeDecodeError):
                if len(head) < size:
                    return None  # the whole file is read: its summary never ends
                size *= 4
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return summary if isinstance(summary, dict) else None


def _enclosing(run_log: RunLog, path: str) -> list[StepLog]:
    """The live records of the composite steps around the step at ``path``, outermost first."""
    names = path.split(".")
    found: list[StepLog] = []
    steps = run_log.steps
    for depth in range(len(names) // 2):
        parent = steps.get(names[2 * depth])
        branch = parent.branches.get(names[2 * depth + 1]) if parent is not None else None
        if parent is None or branch is None:
            break
        found.append(parent)
        steps = branch.steps
    return found
