"""A writing process's lock on a store's folder, and the names of its files there.

- **The lock.** A process's liveness is one lock per process and folder
  (``<folder>/.writers/<token>.lock``), not a lock per run: a run's record names its
  writer's token, and :func:`writer_alive` tells whether that process still holds it. The
  lock goes with the process, so a reader knows at once when a writer was killed (SIGKILL
  included). A run claims it (:func:`claim_lock`) while its record names it; the locks of
  folders with no live run are let go past the few most recently used (:data:`IDLE_KEPT`),
  so the descriptors held do not grow with the folders a process ever wrote to.
- **The writers' files.** Everything in ``.writers`` is named by its writer's token: its
  lock, its spares (``<token>.<hex>.spare``, the journals' making: ``_writers``) and its
  temporary files (``<token>.<hex>.tmp``, a snapshot being written: ``_snapshot``). A
  writer makes them only once it holds its lock, so taking one sweeps the lock files, spares
  and temporary files of writers gone.
- **The spare made with the lock.** This module makes a spare (:func:`spare_in`, a new
  file in the open ``.writers`` folder), and the pool that makes journals of them
  (``_writers``, above this module: it imports this one, never the reverse) keeps what is
  made. So a lock taken for a process's first run in a folder makes that run's spare in
  the folder it has open already (``claim_lock``'s ``spare``), and the pool adopts it; a
  spare's name and the sweep that deletes it stay in one module, and the pool passes down
  nothing but a list to hold what was made.
- **Fork.** A forked child starts with none of its parent's locks
  (:func:`os.register_at_fork`).

Every file here is made and opened through the primitives of ``_files`` (created new, no
symlink followed, folders walked with directory descriptors).
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
from collections import OrderedDict
from pathlib import Path

from ._files import NOFOLLOW, file_at, file_id, open_file, open_folder, open_new

if sys.platform != "win32":
    import fcntl

__all__ = [
    "IDLE_KEPT",
    "TEMPORARY",
    "WRITERS_FOLDER",
    "WriterLock",
    "claim_lock",
    "lock_of",
    "spare_in",
    "unclaim_lock",
    "writer_alive",
    "writer_lock",
]

WRITERS_FOLDER = ".writers"
_LOCK = ".lock"
_SPARE = ".spare"
TEMPORARY = ".tmp"  # a writer's temporary file: ``<token>.<hex>.tmp``
_TOKEN = re.compile(r"[0-9]+-[0-9a-f]{12}")
#: This process's id, for the keys of its locks (a forked child's own, set again at the
#: fork: ``os.getpid`` is a system call, and a run's start asks for its lock).
_pid = os.getpid()


class WriterLock:
    """This process's lock on a folder: ``<folder>/.writers/<token>.lock``.

    Attributes:
        token: what a record names as its writer (``<pid>-<random hex>``).
        runs: the runs of this process that name it now (:func:`claim_lock`).
        pinned: taken by :func:`writer_lock`, for a user that does not count its runs: held
            until the process exits.
    """

    def __init__(self, folder: Path, token: str, fd: int) -> None:
        self.folder = folder
        self.token = token
        self._fd = fd
        self.runs = 0
        self.pinned = False

    def held(self) -> bool:
        """Whether the lock's file is still there (a reader finds this writer by it)."""
        return os.fstat(self._fd).st_nlink > 0

    def close(self) -> None:
        """Let the lock go (its file is gone, or this is a forked child's copy)."""
        os.close(self._fd)

    def release(self) -> None:
        """Let the lock go, its file deleted."""
        name = f"{self.token}{_LOCK}"
        with (
            contextlib.suppress(OSError),
            open_folder(self.folder, WRITERS_FOLDER, create=False) as writers,
        ):
            if file_at(name, dir_fd=writers) == file_id(self._fd):
                os.unlink(name, dir_fd=writers)  # held: no reader takes it meanwhile
        self.close()


# By process (a fork's own) and folder, the least recently used first.
_locks: OrderedDict[tuple[int, str], WriterLock] = OrderedDict()
_locks_guard = threading.Lock()
#: Locks of folders with no live run kept (the most recently used): a process that writes
#: runs in many folders holds a few descriptors, not one per folder it ever used, while one
#: that keeps using a folder does not take its lock (a file made) again for every run.
IDLE_KEPT = 4


def writer_lock(folder: Path) -> WriterLock:
    """This process's writer lock on ``folder``, taken on first use (one descriptor) and held
    until the process exits (for writers that do not count their runs: the event log).

    Lock files of writers that are gone are deleted when a new one is taken.
    """
    with _locks_guard:
        lock = _get_lock(folder)
        lock.pinned = True
        return lock


def claim_lock(
    folder: Path, spare: list[tuple[str, tuple[int, int], int]] | None = None
) -> WriterLock:
    """This process's writer lock on ``folder`` for a run that starts naming it (taken on
    first use); :func:`unclaim_lock` when the run's record no longer names it.

    Args:
        spare: where a lock taken now puts the spare it makes for the run
            (:func:`spare_in`), if it could make one.
    """
    with _locks_guard:
        lock = _get_lock(folder, spare)
        lock.runs += 1
    return lock


def unclaim_lock(lock: WriterLock) -> list[Path]:
    """A run that claimed ``lock`` has ended; locks of folders with no live run past the
    :data:`IDLE_KEPT` most recently used are let go.

    Returns:
        The folders of the locks let go.
    """
    with _locks_guard:
        lock.runs -= 1
        if len(_locks) <= IDLE_KEPT:
            return []  # none past the kept (a run's end need not scan the locks)
        idle = [key for key, held in _locks.items() if held.runs <= 0 and not held.pinned]
        gone = [_locks.pop(key) for key in idle[: max(0, len(idle) - IDLE_KEPT)]]
    for old in gone:
        old.release()
    return [old.folder for old in gone]


def lock_of(folder: Path) -> WriterLock:
    """The lock on ``folder``, neither pinned nor claimed (for the spares of its runs)."""
    with _locks_guard:
        return _get_lock(folder)


def _get_lock(
    folder: Path, spare: list[tuple[str, tuple[int, int], int]] | None = None
) -> WriterLock:
    """The lock on ``folder``; a lock taken now for a run (``spare`` given) also makes the
    folder's spare, added to ``spare``."""
    key = (_pid, str(folder))  # a forked child takes a lock of its own
    lock = _locks.get(key)
    if lock is None or not lock.held():
        # Never taken, or its file deleted (the folder removed and made again): a lock
        # whose file is gone names no writer a reader can find, so it is taken anew.
        fresh = _take_lock(folder, spare)
        if lock is not None:  # its runs' claims stay with it (their records name it)
            fresh.pinned = lock.pinned
            lock.close()
        lock = _locks[key] = fresh
    _locks.move_to_end(key)
    return lock


def _take_lock(
    folder: Path, spare: list[tuple[str, tuple[int, int], int]] | None = None
) -> WriterLock:
    with open_folder(folder, WRITERS_FOLDER, create=True) as writers:
        if sys.platform != "win32":
            _sweep(writers)
        while True:
            # os.urandom, as secrets.token_hex draws it, without its two Python calls.
            token = f"{_pid}-{os.urandom(6).hex()}"
            name = f"{token}{_LOCK}"
            fd = open_file(name, os.O_RDWR | os.O_CREAT | os.O_EXCL | NOFOLLOW, dir_fd=writers)
            if sys.platform != "win32":
                fcntl.flock(fd, fcntl.LOCK_EX)
                # A sweeper may have taken and deleted the file between its creation and the
                # lock: hold it only if it is still the file of that name.
                try:
                    same = os.stat(name, dir_fd=writers, follow_symlinks=False).st_ino
                except FileNotFoundError:
                    same = -1
                if same != os.fstat(fd).st_ino:
                    os.close(fd)
                    continue
            if spare is not None:
                # The run's journal is made from it next: made here, in the folder open
                # already, a process's first run in a folder does not open it again
                # (~7 system calls before its first event). Failing, the journal's making
                # makes one, and reports what stops it.
                with contextlib.suppress(OSError):
                    spare.append(spare_in(writers, token))
            return WriterLock(folder, token, fd)


def spare_in(writers: int, token: str) -> tuple[str, tuple[int, int], int]:
    """A new empty spare of the writer ``token`` in the open ``.writers`` folder: its name,
    identity and a descriptor open on it (for appending)."""
    name = f"{token}.{os.urandom(4).hex()}{_SPARE}"
    fd = open_new(name, dir_fd=writers)  # no Path made: ~25,000 instructions on a first run
    try:
        return name, file_id(fd), fd
    except BaseException:
        os.close(fd)
        raise


def _sweep(writers: int) -> None:
    """Delete the lock files of writers that are gone, their spares and temporary files.

    A writer makes these only once it holds its lock, so one whose lock file was not listed
    with it, or is not held, is a dead writer's.
    """
    names = os.listdir(writers)
    live = set()
    for name in names:
        if not name.endswith(_LOCK):
            continue
        try:
            fd = open_file(name, os.O_RDONLY | NOFOLLOW, dir_fd=writers)
        except OSError:
            live.add(name.removesuffix(_LOCK))  # cannot tell: kept
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            live.add(name.removesuffix(_LOCK))  # its process is alive
        else:
            # Gone already, or not a file a writer made (a folder planted under its name):
            # left, never a reason for this writer not to start.
            with contextlib.suppress(OSError):
                os.unlink(name, dir_fd=writers)
        finally:
            os.close(fd)
    for name in names:
        if name.endswith((_SPARE, TEMPORARY)) and name.partition(".")[0] not in live:
            with contextlib.suppress(OSError):
                os.unlink(name, dir_fd=writers)


def _after_fork_in_child() -> None:
    """A forked child starts with none of its parent's locks.

    Its copies of the parent's lock descriptors are closed (a ``flock`` goes with the open
    file, which the parent still holds: its lock stays, but no longer outlives the parent in
    a child that does not exec); the locks' guard is made anew (one held by another thread
    of the parent at the fork would be held in the child for ever). The pool (``_writers``)
    and the descriptor reserve (``_files``) do the same for themselves.
    """
    global _locks_guard, _pid
    _pid = os.getpid()
    for lock in _locks.values():
        with contextlib.suppress(OSError):
            lock.close()
    _locks.clear()
    _locks_guard = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def writer_alive(folder: Path, token: object) -> bool | None:
    """Whether the writer named ``token`` still holds its lock on ``folder``.

    ``None`` where this cannot be told (no ``flock``), ``False`` for a token that is not one.
    """
    if sys.platform == "win32":
        return None
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        return False
    try:
        fd = open_file(folder / WRITERS_FOLDER / f"{token}{_LOCK}", os.O_RDONLY | NOFOLLOW)
    except (FileNotFoundError, FileExistsError, NotADirectoryError):
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
