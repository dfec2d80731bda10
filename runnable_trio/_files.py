"""File primitives: the one place a run's files are created, replaced, appended and locked.

Every store, log and catalog writes through these, so two guarantees hold everywhere:

- **Nothing outside the roots.** A file a run creates is created new (``O_EXCL``), and no
  call follows a symlink at the final path component (``O_NOFOLLOW``; a rename replaces a
  symlink itself, never its target). A path already taken fails with
  :class:`FileExistsError` naming it. Folders below a root are walked one component at a
  time with directory descriptors (:func:`open_folder`), none of them followed if it is a
  symlink.
- **Descriptors bounded.** No descriptor is held per run: files are opened, written and
  closed, or kept in one small pool of append descriptors (:data:`APPENDS`, least recently
  used closed first). The writer's liveness is one lock per process and folder
  (:func:`writer_lock`), not a lock per run: a run's record names its writer's token, and
  :func:`writer_alive` tells whether that process still holds it. The lock goes with the
  process, so a reader knows at once when a writer was killed (SIGKILL included).

A process out of descriptors (``EMFILE``) gets an ``OSError`` with the same errno saying which
limit it reached (:func:`describe_os_error`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import stat
import sys
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from pathlib import Path

from ._offloop import write_all

if sys.platform != "win32":
    import fcntl
    import resource

__all__ = [
    "APPENDS",
    "AppendPool",
    "WriterLock",
    "append_line",
    "create_new",
    "describe_os_error",
    "ensure_absent",
    "locked",
    "make_folder",
    "open_folder",
    "read_file",
    "read_head",
    "read_from",
    "replace_atomically",
    "reserve_descriptor",
    "writer_alive",
    "writer_lock",
]

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_APPEND_FLAGS = os.O_WRONLY | os.O_APPEND | _NOFOLLOW | _CLOEXEC
WRITERS_FOLDER = ".writers"
_LOCK = ".lock"
_SPARE = ".spare"
_TOKEN = re.compile(r"[0-9]+-[0-9a-f]{12}")


class DescribedOSError(OSError):
    """An ``OSError`` (same errno) whose message says what failed and, if so, which limit."""

    def __init__(self, number: int | None, detail: str, limit: str) -> None:
        super().__init__(number, detail + limit)
        self.detail = detail
        self.limit = limit

    def __str__(self) -> str:
        return f"[Errno {self.errno}] {self.strerror}"

    def __reduce__(self) -> tuple[type[DescribedOSError], tuple[int | None, str, str]]:
        # OSError pickles its args (errno, message); this class is built from three fields.
        return type(self), (self.errno, self.detail, self.limit)


def describe_os_error(exc: OSError, what: str) -> OSError:
    """``exc`` with a message naming ``what`` (and the descriptor limit, if that is why)."""
    if isinstance(exc, DescribedOSError):
        return DescribedOSError(exc.errno, f"{what}: {exc.detail}", exc.limit)
    limit = ""
    if exc.errno in (errno.EMFILE, errno.ENFILE) and sys.platform != "win32":
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        limit = (
            f" (the process's open-file limit RLIMIT_NOFILE is {soft}, hard {hard}; "
            "raise it with `ulimit -n` or close descriptors)"
        )
    return DescribedOSError(exc.errno, f"{what}: {exc.strerror or exc}", limit)


def _open(
    path: Path | str,
    flags: int,
    mode: int = 0o644,
    *,
    dir_fd: int | None = None,
    reserve: bool = False,
) -> int:
    """``os.open``, with clear errors; ``reserve``: out of descriptors, use the reserve."""
    while True:
        try:
            return os.open(path, flags | _CLOEXEC, mode, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # O_NOFOLLOW met a symlink
                raise FileExistsError(
                    errno.EEXIST, f"{str(path)!r} is a symlink: a run never writes through one"
                ) from None
            if exc.errno in (errno.EMFILE, errno.ENFILE):
                if reserve and _give_back():
                    continue
                raise describe_os_error(exc, f"cannot open {str(path)!r}") from exc
            raise


# The reserve. A run that has started must be able to write its next line and its final
# record even if the process's own tasks have taken every other descriptor: for that the
# library keeps one spare descriptor, and the pool's own (APPENDS), which such writes may
# close to make room. A run starts only if the spare can be held (reserve_descriptor), so
# a process at its limit fails new runs at their start, with an error naming the limit.
_spare: int | None = None
_spare_guard = threading.Lock()


def reserve_descriptor() -> None:
    """Hold the spare descriptor (at a run's start).

    Raises:
        OSError: the process is out of descriptors (``EMFILE``, the limit named).
    """
    global _spare
    with _spare_guard:
        if _spare is None:
            try:
                _spare = os.open(os.devnull, os.O_RDONLY | _CLOEXEC)
            except OSError as exc:
                raise describe_os_error(exc, "no descriptor to spare") from exc


def _give_back() -> bool:
    """Close the spare, or else a pooled descriptor; whether one was closed."""
    global _spare
    with _spare_guard:
        if _spare is not None:
            os.close(_spare)
            _spare = None
            return True
    return APPENDS.give_back()


def make_folder(path: Path) -> None:
    """``path`` and its parents made if missing (a look first: cheaper than ``mkdir``)."""
    if not os.path.isdir(path):
        path.mkdir(parents=True, exist_ok=True)


def ensure_absent(path: Path) -> None:
    """Raise ``FileExistsError`` naming ``path`` if anything (a symlink included) is there."""
    if os.path.lexists(path):
        kind = "a symlink" if path.is_symlink() else "already there"
        raise FileExistsError(
            errno.EEXIST, f"{str(path)!r} is {kind}: a run's files are created new"
        )


def _is_link(name: str, dir_fd: int) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def create_new(
    path: Path,
    data: bytes | Iterable[bytes] = b"",
    *,
    dir_fd: int | None = None,
    reserve: bool = False,
) -> None:
    """Create ``path`` with ``data`` (bytes, or chunks of them).

    Raises:
        FileExistsError: anything is there already, a symlink included.
    """
    try:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW
        fd = _open(path, flags, dir_fd=dir_fd, reserve=reserve)
    except FileExistsError as exc:
        link = os.path.islink(path) if dir_fd is None else _is_link(path.name, dir_fd)
        what = "is a symlink: a run never writes through one" if link else "already exists"
        raise FileExistsError(
            errno.EEXIST, f"{str(path)!r} {what}; a run's files are created new"
        ) from exc
    try:
        for chunk in [data] if isinstance(data, bytes) else data:
            write_all(fd, chunk)
    finally:
        os.close(fd)


def replace_atomically(
    path: Path,
    data: bytes | Iterable[bytes],
    *,
    dir_fd: int | None = None,
    reserve: bool = False,
) -> None:
    """Write ``path`` whole or not at all: a new temporary file beside it, then a rename.

    The rename replaces what is there (a symlink is replaced, its target untouched). With
    ``dir_fd``, ``path`` is taken by its name in that folder.
    """
    name = path.name if dir_fd is not None else str(path)
    temporary = str(Path(name).with_name(f".{path.name}.{secrets.token_hex(4)}.tmp"))
    create_new(Path(temporary), data, dir_fd=dir_fd, reserve=reserve)
    try:
        os.replace(temporary, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary, dir_fd=dir_fd)
        raise


def read_file(path: Path, *, limit: int | None = None) -> bytes:
    """The bytes of ``path`` (the first ``limit`` of them), not following a final symlink.

    Raises:
        FileNotFoundError: no such file.
        FileExistsError: ``path`` is a symlink (nothing outside a root is read).
    """
    fd = _open(path, os.O_RDONLY | _NOFOLLOW)
    try:
        if limit is not None:
            return os.read(fd, limit)
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_head(path: Path, size: int) -> bytes:
    """The first ``size`` bytes of ``path`` (see :func:`read_file`)."""
    return read_file(path, limit=size)


def read_from(path: Path, offset: int) -> bytes:
    """The bytes of ``path`` from ``offset`` on (see :func:`read_file`)."""
    fd = _open(path, os.O_RDONLY | _NOFOLLOW)
    try:
        chunks = []
        while chunk := os.pread(fd, 1 << 20, offset):
            chunks.append(chunk)
            offset += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def append_line(path: Path, data: bytes) -> None:
    """Append ``data`` to the existing file ``path``: open, write, close (for worker threads)."""
    fd = _open(path, _APPEND_FLAGS, reserve=True)
    try:
        write_all(fd, data)
    finally:
        os.close(fd)


@contextlib.contextmanager
def open_folder(root: Path, *parts: str, create: bool) -> Iterator[int]:
    """A descriptor of the folder ``root/part/...``, walked without following symlinks.

    ``root`` itself is the user's (it may be a symlink); every part below it must be a real
    folder (made if ``create``). Closed on leaving the block.

    Raises:
        FileExistsError: a part is a symlink or a file.
        FileNotFoundError: a part is missing and not ``create``.
    """
    if create:
        make_folder(root)
    fd = _open(root, os.O_RDONLY | _DIRECTORY)
    try:
        for depth, part in enumerate(parts):
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=fd)
            try:
                child = _open(part, os.O_RDONLY | _DIRECTORY | _NOFOLLOW, dir_fd=fd)
            except (NotADirectoryError, FileExistsError):
                where = str(root.joinpath(*parts[: depth + 1]))
                link = os.path.islink(where)
                kind = "a symlink: a run never writes through one" if link else "not a folder"
                raise FileExistsError(errno.EEXIST, f"{where!r} is {kind}") from None
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[int]:
    """``path`` (created if missing, never followed) open and exclusively locked in the block.

    For short critical sections between processes (a retry claiming a run); blocks until
    the lock is free.
    """
    fd = _open(path, os.O_RDWR | os.O_CREAT | _NOFOLLOW)
    try:
        if sys.platform != "win32":
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)


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
    thread (:meth:`make_spare`), one per process and folder, closed (no descriptor held).
    The spare's own name goes once linked; a process killed before leaves it for the next
    sweep of its folder's lock files (:func:`writer_lock`).
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._fds: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.RLock()
        self._spares: dict[tuple[int, str], Path] = {}  # by process (a fork's own) and folder

    def append(self, path: Path, data: bytes) -> None:
        """Append ``data`` to the existing file ``path`` (never created, never followed)."""
        key = str(path)
        with self._lock:
            fd = self._fds.get(key)
            if fd is None:
                fd = self._open(path)
            else:
                self._fds.move_to_end(key)
            try:
                write_all(fd, data)
            except BaseException:
                self._close(key)
                raise

    def create(self, path: Path, data: bytes) -> None:
        """Create ``path`` new holding ``data`` (a run's journal, as the run starts), open in
        the pool; this claims the name. ``data`` goes into the folder's spare (made now if
        there is none), which is then linked to ``path``: a reader never sees it partly
        written.

        Raises:
            FileExistsError: anything is there already, a symlink included.
            OSError: out of descriptors (the reserve is not used: a run starts only with
                descriptors to spare).
        """
        key = str(path)
        with self._lock:
            self._close(key)
            spare = self._spares.pop((os.getpid(), str(path.parent)), None)
            if spare is not None:
                with contextlib.suppress(FileNotFoundError):  # deleted by hand: a new one
                    self._keep(key, self._from_spare(spare, path, data))
                    return
            self._keep(key, self._from_spare(_new_spare(path.parent), path, data))

    def make_spare(self, folder: Path) -> None:
        """Make the spare of ``folder`` for a later :meth:`create`, unless there is one.

        For a worker thread: creating the file is what takes long.
        """
        key = (os.getpid(), str(folder))
        if key in self._spares:
            return
        spare = _new_spare(folder)
        with self._lock:
            if key not in self._spares:
                self._spares[key] = spare
                return
        spare.unlink()  # another thread made one meanwhile

    def _from_spare(self, spare: Path, path: Path, data: bytes) -> int:
        """The spare's descriptor once it holds ``data`` under the name ``path``.

        Raises:
            FileNotFoundError: the spare is gone.
        """
        key = (os.getpid(), str(path.parent))
        try:
            fd = _open(spare, _APPEND_FLAGS)
        except OSError as exc:
            if exc.errno in (errno.EMFILE, errno.ENFILE):
                self._spares[key] = spare  # still spare
            raise
        try:
            write_all(fd, data)
            os.link(spare, path, follow_symlinks=False)
        except FileExistsError:
            os.ftruncate(fd, 0)
            os.close(fd)
            self._spares[key] = spare  # still spare
            raise _taken(path) from None
        except BaseException:
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                spare.unlink()
            raise
        with contextlib.suppress(FileNotFoundError):
            spare.unlink()
        return fd

    def forget(self, path: Path) -> None:
        """Close the descriptor of ``path``, if one is open (before it is deleted, replaced)."""
        with self._lock:
            self._close(str(path))

    def __len__(self) -> int:
        return len(self._fds)

    def forget_all(self) -> None:
        """In a forked child: close the parent's descriptors, forget its spares, new lock."""
        for fd in self._fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds.clear()
        self._spares.clear()
        self._lock = threading.RLock()

    def give_back(self) -> bool:
        """Close the least recently used descriptor; whether there was one."""
        with self._lock:
            if not self._fds:
                return False
            self._close(next(iter(self._fds)))
            return True

    def _open(self, path: Path, extra: int = 0, *, reserve: bool = True) -> int:
        # Appends of a started run may use the reserve; creating a journal (a run's start)
        # may not.
        try:
            fd = _open(path, _APPEND_FLAGS | extra, reserve=reserve)
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


def _new_spare(folder: Path) -> Path:
    """A new empty spare file for ``folder``, named by this process's writer token."""
    name = f"{writer_lock(folder).token}.{secrets.token_hex(4)}{_SPARE}"
    with open_folder(folder, WRITERS_FOLDER, create=True) as writers:
        create_new(Path(name), dir_fd=writers)
    return folder / WRITERS_FOLDER / name


def _taken(path: Path) -> FileExistsError:
    link = os.path.islink(path)
    what = "is a symlink: a run never writes through one" if link else "already exists"
    return FileExistsError(errno.EEXIST, f"{str(path)!r} {what}; a run's files are created new")


#: The process's pool of journal descriptors.
APPENDS = AppendPool(16)


class WriterLock:
    """This process's lock on a folder: ``<folder>/.writers/<token>.lock``, held until exit.

    Attributes:
        token: what a record names as its writer (``<pid>-<random hex>``).
    """

    def __init__(self, folder: Path, token: str, fd: int) -> None:
        self.folder = folder
        self.token = token
        self._fd = fd

    def held(self) -> bool:
        """Whether the lock's file is still there (a reader finds this writer by it)."""
        return os.fstat(self._fd).st_nlink > 0

    def close(self) -> None:
        """Let the lock go (its file is gone, or this is a forked child's copy)."""
        os.close(self._fd)


_locks: dict[tuple[int, str], WriterLock] = {}
_locks_guard = threading.Lock()


def writer_lock(folder: Path) -> WriterLock:
    """This process's writer lock on ``folder``, taken on first use (one descriptor).

    Lock files of writers that are gone are deleted when a new one is taken.
    """
    key = (os.getpid(), str(folder))  # a forked child takes a lock of its own
    with _locks_guard:
        lock = _locks.get(key)
        if lock is None or not lock.held():
            # Never taken, or its file deleted (the folder removed and made again): a lock
            # whose file is gone names no writer a reader can find, so it is taken anew.
            if lock is not None:
                lock.close()
            lock = _locks[key] = _take_lock(folder)
        return lock


def _take_lock(folder: Path) -> WriterLock:
    with open_folder(folder, WRITERS_FOLDER, create=True) as writers:
        if sys.platform != "win32":
            _sweep(writers)
        while True:
            token = f"{os.getpid()}-{secrets.token_hex(6)}"
            name = f"{token}{_LOCK}"
            fd = _open(name, os.O_RDWR | os.O_CREAT | os.O_EXCL | _NOFOLLOW, dir_fd=writers)
            if sys.platform == "win32":
                return WriterLock(folder, token, fd)
            fcntl.flock(fd, fcntl.LOCK_EX)
            # A sweeper may have taken and deleted the file between its creation and the
            # lock: hold it only if it is still the file of that name.
            try:
                same = os.stat(name, dir_fd=writers, follow_symlinks=False).st_ino
            except FileNotFoundError:
                same = -1
            if same == os.fstat(fd).st_ino:
                return WriterLock(folder, token, fd)
            os.close(fd)


def _sweep(writers: int) -> None:
    """Delete the lock files of writers that are gone, and their spares (``AppendPool``).

    A writer makes its spares only once it holds its lock, so a spare whose lock file was
    not listed with it, or is not held, is a dead writer's.
    """
    names = os.listdir(writers)
    live = set()
    for name in names:
        if not name.endswith(_LOCK):
            continue
        try:
            fd = _open(name, os.O_RDONLY | _NOFOLLOW, dir_fd=writers)
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
        if name.endswith(_SPARE) and name.partition(".")[0] not in live:
            with contextlib.suppress(OSError):
                os.unlink(name, dir_fd=writers)


def _after_fork_in_child() -> None:
    """A forked child starts with none of its parent's writer state.

    Its copies of the parent's lock descriptors are closed (a ``flock`` goes with the open
    file, which the parent still holds: its lock stays, but no longer outlives the parent in
    a child that does not exec), as are the pooled journal descriptors and the reserve; the
    parent's spares are forgotten; the thread locks are made anew (one held by another
    thread of the parent at the fork would be held in the child for ever).
    """
    global _locks_guard, _spare_guard, _spare
    for lock in _locks.values():
        with contextlib.suppress(OSError):
            lock.close()
    _locks.clear()
    _locks_guard = threading.Lock()
    _spare_guard = threading.Lock()
    if _spare is not None:
        with contextlib.suppress(OSError):
            os.close(_spare)
        _spare = None
    APPENDS.forget_all()


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
        fd = _open(folder / WRITERS_FOLDER / f"{token}{_LOCK}", os.O_RDONLY | _NOFOLLOW)
    except (FileNotFoundError, FileExistsError, NotADirectoryError):
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
