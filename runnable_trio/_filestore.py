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

While a run is going, its process holds an exclusive ``flock`` on the journal; the lock goes
with the process, so :meth:`FileRunLogStore.alive` tells a running run from one whose
process died (both ``PROCESSING``), which a retry needs.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import sys
from pathlib import Path

import attrs

from ._errors import RunConfigurationError
from ._jsoncodec import dumps, loads
from ._offloop import run_blocking, write_all
from ._runlog import (
    BranchLog,
    RunLog,
    Status,
    StepLog,
    place_step,
    run_log_from_dict,
    run_log_to_dict,
    step_log_from_dict,
    step_log_to_dict,
)
from ._store import RunSummary

if sys.platform != "win32":
    import fcntl

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
        self._journals: dict[str, _Journal] = {}

    def __repr__(self) -> str:
        return f"FileRunLogStore({str(self.folder)!r})"

    def snapshot_path(self, run_id: str) -> Path:
        return self.folder / f"{run_id}.json"

    def journal_path(self, run_id: str) -> Path:
        return self.folder / f"{run_id}.journal.jsonl"

    def exists(self, run_id: str) -> bool:
        return self.snapshot_path(run_id).exists()

    async def create(self, run_log: RunLog) -> None:
        """Write the first snapshot, claiming the id atomically.

        Raises:
            RunConfigurationError: a run with this id exists (even one started a moment ago
                by another process).

        Cancellation: not a checkpoint (see the module docstring for why this is inline).
        """
        data = _encode(run_log)
        fd = self._create_files(run_log.run_id, data)
        self._journals[run_log.run_id] = _Journal(fd, run_log.run_id)

    async def reopen(self, run_log: RunLog) -> None:
        """A recorded run is retried: rewrite its snapshot (now PROCESSING), empty its journal.

        Raises:
            RunConfigurationError: the run is still going in some process.
        """
        data = _encode(run_log)
        fd = await run_blocking(self._reopen_files, run_log.run_id, data)
        self._journals[run_log.run_id] = _Journal(fd, run_log.run_id)

    async def step_finished(self, run_log: RunLog, step: StepLog) -> None:
        """Append the step's line to the run's journal.

        Cancellation: not a checkpoint.
        """
        journal = self._journals.get(run_log.run_id)
        if journal is None:
            return  # not a run this store started
        lines = []
        for parent in _enclosing(run_log, step.path):
            # A composite step's own record goes in once, before the first line of a step
            # inside it; repeating it on every line would cost a Map of n items n copies.
            if parent.path not in journal.parents_written:
                journal.parents_written.add(parent.path)
                header = step_log_to_dict(attrs.evolve(parent, branches={}))
                lines.append(dumps({"parent": header}))
        if step.branches:
            # The steps inside a composite are in the journal already: its own line says only
            # how each branch ended, and the reader keeps the steps it has placed.
            step = attrs.evolve(
                step, branches={k: BranchLog(k, b.status) for k, b in step.branches.items()}
            )
        lines.append(dumps({"step": step_log_to_dict(step)}))
        journal.append(("\n".join(lines) + "\n").encode())

    async def finish(self, run_log: RunLog) -> None:
        """Write the final snapshot atomically, then drop the journal and its lock."""
        journal = self._journals.pop(run_log.run_id, None)
        if journal is None:
            return
        # Encoding a long run's record takes a while: done in the thread too (it is final).
        await run_blocking(self._finish_files, run_log, journal.fd)

    def load(self, run_id: str) -> RunLog:
        """The run's record: the snapshot, with the journal's steps placed in while running.

        Raises:
            KeyError: no run with this id.
            RunConfigurationError: the snapshot is not a run log.
        """
        path = self.snapshot_path(run_id)
        try:
            text = path.read_bytes()
        except FileNotFoundError:
            raise KeyError(run_id) from None
        try:
            run_log = run_log_from_dict(loads(text))
        except Exception as exc:
            raise RunConfigurationError(f"{str(path)!r} is not a run log: {exc}") from exc
        if run_log.status is Status.PROCESSING:
            self._apply_journal(run_log)
        return run_log

    def runs(self) -> list[RunSummary]:
        """Every run in the folder, newest first."""
        found: list[RunSummary] = []
        if not self.folder.is_dir():
            return found
        for path in self.folder.glob("*.json"):
            try:
                data = loads(path.read_bytes())
                found.append(
                    RunSummary(
                        run_id=data["run_id"],
                        status=Status(data["status"]),
                        tag=data["tag"],
                        pipeline_name=data["pipeline_name"],
                        started_at=dt.datetime.fromisoformat(data["started_at"]),
                        ended_at=(
                            None
                            if data["ended_at"] is None
                            else dt.datetime.fromisoformat(data["ended_at"])
                        ),
                        alive=(data["status"] == Status.PROCESSING and self.alive(data["run_id"])),
                    )
                )
            except (OSError, ValueError, KeyError, TypeError):
                continue  # not a run log (a stray file), or deleted meanwhile
        found.sort(key=lambda run: run.started_at, reverse=True)
        return found

    def alive(self, run_id: str) -> bool | None:
        """Whether a process is running this run now (it holds the journal's lock)."""
        if sys.platform == "win32":
            return None
        try:
            fd = os.open(self.journal_path(run_id), os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    # File work (in worker threads, but for _create_files: see the module docstring).

    def _create_files(self, run_id: str, data: bytes) -> int:
        self.folder.mkdir(parents=True, exist_ok=True)
        final = self.snapshot_path(run_id)
        temporary = self._write_temporary(final, data)
        try:
            os.link(temporary, final)  # fails if the id is taken: the claim is atomic
        except FileExistsError:
            raise RunConfigurationError(f"a run with id {run_id!r} already exists") from None
        finally:
            os.unlink(temporary)
        return self._open_journal(run_id, truncate=True)

    def _reopen_files(self, run_id: str, data: bytes) -> int:
        fd = self._open_journal(run_id, truncate=False)
        try:
            final = self.snapshot_path(run_id)
            os.replace(self._write_temporary(final, data), final)
            os.ftruncate(fd, 0)  # the snapshot now holds what the journal held
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _finish_files(self, run_log: RunLog, fd: int) -> None:
        final = self.snapshot_path(run_log.run_id)
        try:
            os.replace(self._write_temporary(final, _encode(run_log)), final)
            self.journal_path(run_log.run_id).unlink(missing_ok=True)
        finally:
            os.close(fd)

    def _open_journal(self, run_id: str, *, truncate: bool) -> int:
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | (os.O_TRUNC if truncate else 0)
        fd = os.open(self.journal_path(run_id), flags, 0o644)
        if sys.platform != "win32":
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise RunConfigurationError(
                    f"run {run_id!r} is being run by another process"
                ) from None
        return fd

    @staticmethod
    def _write_temporary(final: Path, data: bytes) -> Path:
        temporary = final.with_name(f"{final.name}.{secrets.token_hex(4)}.tmp")
        with open(temporary, "xb") as file:
            file.write(data)
        return temporary

    def _apply_journal(self, run_log: RunLog) -> None:
        try:
            lines = self.journal_path(run_log.run_id).read_bytes().splitlines()
        except FileNotFoundError:
            return
        parents: dict[str, StepLog] = {}
        for line in lines:
            try:
                entry = loads(line)
                if "parent" in entry:
                    parent = step_log_from_dict(entry["parent"])
                    parents[parent.path] = parent
                    continue
                step = step_log_from_dict(entry["step"])
            except Exception:
                break  # a line cut short by a crash: the last one
            place_step(run_log, step, parents)


def _encode(run_log: RunLog) -> bytes:
    return dumps(run_log_to_dict(run_log)).encode()


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


class _Journal:
    """A run's open journal: each line appended with one ``write`` as its step ends."""

    def __init__(self, fd: int, run_id: str) -> None:
        self.fd = fd
        self._run_id = run_id
        self.parents_written: set[str] = set()

    def append(self, line: bytes) -> None:
        """Append a line (see the module docstring for why this is not in a thread).

        Raises:
            OSError: the line cannot be written; the run fails, its record can no longer be
                kept durable.
        """
        try:
            write_all(self.fd, line)
        except OSError as exc:
            raise OSError(
                f"the run log journal of run {self._run_id!r} cannot be written: {exc}"
            ) from exc
