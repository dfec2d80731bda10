"""The pool a writing process's runs append their journals through, and the spares their
journals are made from.

- **The pool** (:data:`APPENDS`): a few open append descriptors shared by every run, the
  least recently used closed first, so the descriptors held stay bounded however many runs
  are live (:class:`AppendPool`).
- **Spares.** A run's journal is made from a spare, a file made ahead in the folder's
  ``.writers/``, one per process and folder, while the process holds its writer lock on the
  folder: a run claims the lock (:func:`claim_writer`) while its record names it, and this
  process's spare of a folder goes when the lock is let go (:func:`release_writer`).
- **The lock below.** The writer lock, and the names of a writer's files in ``.writers``
  and their sweep, are ``_writerlock``'s, which this module imports (never the reverse). A
  spare is named by its writer's token, so it is made by ``_writerlock.spare_in``: by this
  pool, in the ``.writers`` folder it opens, or by the lock taken for a process's first run
  in a folder, in the folder that has open already (``claim_lock``'s ``spare``), which the
  pool then adopts.
- **Fork.** A forked child starts with none of the pool (:func:`os.register_at_fork`).

Every file here is made and opened through the primitives of ``_files`` (created new, no
symlink followed, folders walked with directory descriptors).
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
from collections import OrderedDict
from pathlib import Path

from ._files import APPEND_FLAGS, file_at, file_id, give_back_with, open_file, open_folder
from ._offloop import write_all
from ._writerlock import (
    WRITERS_FOLDER,
    WriterLock,
    claim_lock,
    lock_of,
    spare_in,
    unclaim_lock,
)

__all__ = ["APPENDS", "AppendPool", "claim_writer", "release_writer"]

#: This process's id, for the keys of its spares (a forked child's own, set again at the
#: fork: ``os.getpid`` is a system call, and a run's start asks for it several times).
_pid = os.getpid()


class AppendPool:
    """A few open append descriptors, shared by every run of the process.

    A journal line is one ``write`` on the event loop to a cached descriptor, as cheap as an
    open file per run was; past ``size`` files the least recently used is closed, so the
    descriptors held stay at most ``size`` however many runs are live. A process out of
    descriptors gets one back from the pool before giving up.

    Spares. A journal is made as a spare, an empty file ``<token>.<hex>.spare`` in the
    folder's ``.writers/``: a run starting writes its first record into it and links it to
    its journal's name, which claims that name as an exclusive create would (``link`` fails
    if anything is there and follows no symlink) and shows it whole, never partly written.
    Creating a file costs 60-200 us on this machine's file system, against a few for opening
    one, writing it or linking it; so a run that ends makes the next spare ahead, in a worker
    thread (:meth:`make_spare`), one per process and folder. The spare made last stays open
    from its making (one descriptor, given back first when the process runs out): a run
    that finds it writes its record through that descriptor, which is the file made, so
    the start of a run in a process that keeps writing to one folder (the usual case) opens
    nothing and asks for no identity. Another folder's spare is opened by name, and its
    identity, kept with the name, checked: a symlink planted at ``.writers`` since (or at
    the spare's name) is refused before anything is written. Either way the journal, once
    linked, is checked to be the file made. The spare's own name, a second name of the
    journal once linked, goes later, in that worker thread, through a descriptor of
    ``.writers`` (nothing reached through a symlink is deleted); a process killed before
    leaves it for the next sweep of its folder's lock files (:func:`writer_lock`).
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._fds: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.RLock()
        # By process (a fork's own) and folder: the spare (name, identity), and the names
        # of spares linked since, to delete.
        self._spares: dict[tuple[int, str], tuple[str, tuple[int, int]]] = {}
        self._linked: dict[tuple[int, str], list[str]] = {}
        # The spare made last, open since (its name and descriptor): one at most, so the
        # descriptors held do not grow with the folders a process writes to.
        self._open_spare: tuple[str, int] | None = None

    def append(self, path: str, data: bytes) -> None:
        """Append ``data`` to the existing file ``path`` (never created, never followed).

        The path as text, the pool's key itself: a ``str()`` of it per journal line cost a
        call."""
        with self._lock:
            fd = self._fds.get(path)
            if fd is None:
                fd = self._open(path)
            else:
                self._fds.move_to_end(path)
            try:
                # One write, as a journal line's usually is; write_all only for what a
                # partial write left (its view and slices cost a line ~1,500 instructions).
                written = os.write(fd, data)
                if written < len(data):
                    write_all(fd, data[written:])
            except BaseException:
                self._close(path)
                raise

    def create(self, path: Path | str, data: bytes) -> tuple[int, int]:
        """Create ``path`` new holding ``data`` (a run's journal, as the run starts), open in
        the pool; this claims the name. ``data`` goes into the folder's spare (made now if
        there is none), which is then linked to ``path``: a reader never sees it partly
        written.

        Returns:
            The identity of the file made (:func:`_files.file_id`).

        Raises:
            FileExistsError: anything is there already, a symlink included; or the spare
                opened is not the file made (a symlink planted at ``.writers``).
            OSError: out of descriptors (the reserve is not used: a run starts only with
                descriptors to spare).
        """
        # As text: made into Path objects, the few names a run's start needs cost more than
        # the system calls that use them.
        key = str(path)
        # Its folder as the store names it (``<folder><sep><name>``): the key of its spare.
        folder = key.rpartition(os.sep)[0] or os.curdir
        with self._lock:
            self._close(key)
            spare = self._spares.pop((_pid, folder), None)
            if spare is not None:
                # (Not contextlib.suppress: its three calls cost more than a system call.)
                try:
                    return self._from_spare(spare, self._take_open(spare[0]), key, folder, data)
                except FileNotFoundError:
                    pass  # deleted by hand: a new one
            name, made, fd = _new_spare(Path(folder), [])
            return self._from_spare((name, made), fd, key, folder, data)

    def make_spare(self, folder: Path) -> None:
        """Make the spare of ``folder`` for a later :meth:`create`, unless there is one, and
        delete the names of the spares linked since the last call.

        For a worker thread: creating a file is what takes long.
        """
        key = (_pid, str(folder))
        with self._lock:
            linked = self._linked.pop(key, [])
        if key in self._spares:
            if linked:
                _unlink_spares(folder, linked)
            return
        self._adopt(folder, *_new_spare(folder, linked))

    def _adopt(self, folder: Path, name: str, made: tuple[int, int], fd: int) -> None:
        """Keep the new spare ``name`` (identity ``made``, open as ``fd``) as ``folder``'s,
        unless it has one."""
        key = (_pid, str(folder))
        with self._lock:
            if key not in self._spares:
                self._spares[key] = name, made
                self._hold(name, fd)
                return
        os.close(fd)
        _unlink_spares(folder, [name])  # another thread made one meanwhile

    def drop_spare(self, folder: Path) -> None:
        """Delete this process's spare of ``folder`` and the names of those linked (its
        lock let go)."""
        key = (_pid, str(folder))
        with self._lock:
            spare = self._spares.pop(key, None)
            names = self._linked.pop(key, [])
            if spare is not None:
                fd = self._take_open(spare[0])
                if fd is not None:
                    os.close(fd)
        if spare is not None:
            names.append(spare[0])
        if names:
            _unlink_spares(folder, names)

    def _take_open(self, name: str) -> int | None:
        """The descriptor of the spare ``name`` if it is the one held open (no longer held)."""
        held = self._open_spare
        if held is None or held[0] != name:
            return None
        self._open_spare = None
        return held[1]

    def _hold(self, name: str, fd: int) -> None:
        """Hold ``fd`` open as the descriptor of the spare ``name`` (the one held before is
        closed)."""
        held, self._open_spare = self._open_spare, (name, fd)
        if held is not None:
            os.close(held[1])

    def _from_spare(
        self,
        spare: tuple[str, tuple[int, int]],
        fd: int | None,
        path: str,
        folder: str,
        data: bytes,
    ) -> tuple[int, int]:
        """The identity of the spare, kept open in the pool once it holds ``data`` under the
        name ``path`` (in ``folder``).

        Args:
            fd: the spare's descriptor, open since it was made; None: opened here by name.

        Raises:
            FileNotFoundError: the spare is gone.
            FileExistsError: ``path`` is taken, or the spare is not the file made (a
                symlink planted at ``.writers``, or at its name as it was linked).
        """
        key = (_pid, folder)
        name, made = spare
        # NOFOLLOW at the last part; the rest checked. (Joined as text, not os.path.join:
        # see create.)
        where = f"{folder}{os.sep}{WRITERS_FOLDER}{os.sep}{name}"
        if fd is None:
            try:
                fd = open_file(where, APPEND_FLAGS)
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE):
                    self._spares[key] = spare  # still spare
                raise
            if file_id(fd) != made:
                os.close(fd)  # not the spare (forgotten): nothing written
                raise FileExistsError(
                    errno.EEXIST,
                    f"{where!r} is not the spare this process made (is "
                    f"{os.path.join(folder, WRITERS_FOLDER)!r} a symlink?): a run never "
                    "writes through one",
                )
        try:
            write_all(fd, data)
            os.link(where, path, follow_symlinks=False)
        except FileExistsError:
            os.ftruncate(fd, 0)
            self._spares[key] = spare  # still spare, and open
            self._hold(name, fd)
            raise _taken(path) from None
        except BaseException:
            os.close(fd)
            self._linked.setdefault(key, []).append(name)
            raise
        if file_at(path) != made:
            # What was linked is not the file written: the spare's name (or ``.writers``)
            # was swapped since the spare was made (held open) or opened. The name linked
            # goes again.
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(path)
            raise FileExistsError(
                errno.EEXIST,
                f"{where!r} was replaced before it was linked to {path!r} (by a file or a "
                "symlink): a run writes only to the file it made",
            )
        self._linked.setdefault(key, []).append(name)
        self._keep(path, fd)
        return made

    def forget(self, path: Path | str) -> None:
        """Close the descriptor of ``path``, if one is open (before it is deleted, replaced)."""
        with self._lock:
            self._close(str(path))

    def __len__(self) -> int:
        return len(self._fds)

    def forget_all(self) -> None:
        """In a forked child: close the parent's descriptors, forget its spares, new lock."""
        held = list(self._fds.values())
        if self._open_spare is not None:
            held.append(self._open_spare[1])
        for fd in held:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds.clear()
        self._spares.clear()
        self._linked.clear()
        self._open_spare = None
        self._lock = threading.RLock()

    def give_back(self) -> bool:
        """Close the spare's descriptor held open, else the least recently used journal's;
        whether there was one."""
        with self._lock:
            held = self._open_spare
            if held is not None:
                self._open_spare = None  # still spare: opened by name when used
                os.close(held[1])
                return True
            if not self._fds:
                return False
            self._close(next(iter(self._fds)))
            return True

    def _open(self, path: Path | str, extra: int = 0, *, reserve: bool = True) -> int:
        # Appends of a started run may use the reserve; creating a journal (a run's start)
        # may not.
        try:
            fd = open_file(path, APPEND_FLAGS | extra, reserve=reserve)
        except FileExistsError as exc:
            raise _taken(path) from exc
        self._keep(str(path), fd)
        return fd

    def _keep(self, key: str, fd: int) -> None:
        if len(self._fds) >= self.size:
            self._close(next(iter(self._fds)))
        self._fds[key] = fd

    def _close(self, key: str) -> None:
        fd = self._fds.pop(key, None)
        if fd is not None:
            os.close(fd)


def _new_spare(folder: Path, linked: list[str]) -> tuple[str, tuple[int, int], int]:
    """A new empty spare file for ``folder``: its name in ``.writers`` (by this process's
    writer token), its identity and a descriptor open on it (for appending); the names in
    ``linked`` deleted meanwhile."""
    with open_folder(folder, WRITERS_FOLDER, create=True) as writers:
        for old in linked:
            with contextlib.suppress(OSError):
                os.unlink(old, dir_fd=writers)
        return spare_in(writers, lock_of(folder).token)


def _unlink_spares(folder: Path, names: list[str]) -> None:
    with contextlib.suppress(OSError), open_folder(folder, WRITERS_FOLDER, create=False) as w:
        for name in names:
            with contextlib.suppress(OSError):
                os.unlink(name, dir_fd=w)


def _taken(path: Path | str) -> FileExistsError:
    link = os.path.islink(path)
    what = "is a symlink: a run never writes through one" if link else "already exists"
    return FileExistsError(errno.EEXIST, f"{str(path)!r} {what}; a run's files are created new")


#: The process's pool of journal descriptors (a source of descriptors for the reserve).
APPENDS = AppendPool(16)
give_back_with(APPENDS.give_back)


def claim_writer(folder: Path) -> WriterLock:
    """This process's writer lock on ``folder`` for a run that starts naming it
    (:func:`_writerlock.claim_lock`); :func:`release_writer` when the run's record no longer
    names it. A spare the lock made as it was taken is kept as the folder's."""
    spare: list[tuple[str, tuple[int, int], int]] = []
    lock = claim_lock(folder, spare)
    if spare:  # kept once the locks' guard is let go: the pool's lock is taken before it
        APPENDS._adopt(folder, *spare[0])
    return lock


def release_writer(lock: WriterLock) -> None:
    """A run that claimed ``lock`` has ended (:func:`_writerlock.unclaim_lock`): this
    process's spares of the folders whose locks were let go are deleted."""
    for folder in unclaim_lock(lock):
        APPENDS.drop_spare(folder)


def _after_fork_in_child() -> None:
    """A forked child starts with none of its parent's pool: the pooled journal descriptors
    and the spare held open are closed, the spares forgotten and the pool's thread lock made
    anew (:meth:`AppendPool.forget_all`). Its locks (``_writerlock``) and the descriptor
    reserve (``_files``) do the same for themselves."""
    global _pid
    _pid = os.getpid()
    APPENDS.forget_all()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
