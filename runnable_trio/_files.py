"""File primitives: the one place a run's files are created, replaced, appended and locked.

Every store, log and catalog writes through these, so two guarantees hold everywhere:

- **Nothing outside the roots.** A file a run creates is created new (``O_EXCL``), and no
  call follows a symlink at the final path component (``O_NOFOLLOW``; a rename replaces a
  symlink itself, never its target). A path already taken fails with
  :class:`FileExistsError` naming it. Folders below a root are walked one component at a
  time with directory descriptors (:func:`open_folder`), none of them followed if it is a
  symlink.
- **Descriptors bounded.** No descriptor is held per run: files are opened, written and
  closed, or kept in the one small pool of append descriptors of ``_writers`` (which also
  holds each process's spares; its writer locks are ``_writerlock``'s). A run that has
  started can still write when the process is out of descriptors: the reserve
  (:func:`reserve_descriptor`).

A process out of descriptors (``EMFILE``) gets an ``OSError`` with the same errno saying which
limit it reached (:func:`describe_os_error`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from ._offloop import write_all

if sys.platform != "win32":
    import fcntl
    import resource

__all__ = [
    "APPEND_FLAGS",
    "append_line",
    "create_new",
    "describe_os_error",
    "ensure_absent",
    "file_at",
    "file_id",
    "locked",
    "make_folder",
    "open_folder",
    "open_new",
    "read_file",
    "read_head",
    "read_from",
    "give_back_with",
    "is_at",
    "open_file",
    "replace_atomically",
    "reserve_descriptor",
]

NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
APPEND_FLAGS = os.O_WRONLY | os.O_APPEND | NOFOLLOW | _CLOEXEC


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
    detail = exc.strerror or str(exc)
    if exc.filename is not None:  # which file: the message would not say otherwise
        detail = f"{detail}: {os.fsdecode(exc.filename)!r}"
    return DescribedOSError(exc.errno, f"{what}: {detail}", limit)


def open_file(
    path: Path | str,
    flags: int,
    mode: int = 0o644,
    *,
    dir_fd: int | None = None,
    reserve: bool = False,
) -> int:
    """``os.open``, with clear errors; ``reserve``: out of descriptors, use the reserve."""
    waited_since = None
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
                if reserve:
                    # Nothing left to give back: another write of a started run holds what
                    # the reserve gave (a record's replacement takes two descriptors, its
                    # folder's and its file's, while the event log appends in another
                    # thread). Such writes are short and close what they open: wait for one.
                    now = time.monotonic()
                    waited_since = now if waited_since is None else waited_since
                    if now - waited_since < RESERVE_PATIENCE:
                        _wait_for_a_descriptor()
                        continue
                raise describe_os_error(exc, f"cannot open {str(path)!r}") from exc
            raise


#: Seconds a write that may use the reserve waits, out of descriptors with none to give back,
#: for another such write to close one. Generous: only a process at its limit waits at all.
RESERVE_PATIENCE = 5.0


def _wait_for_a_descriptor() -> None:
    time.sleep(0.001)  # in a worker thread or, inline, on the loop: releases the GIL


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
    if _spare is not None:
        return  # held (every run's start after the first): no lock to take
    with _spare_guard:
        if _spare is None:
            try:
                _spare = os.open(os.devnull, os.O_RDONLY | _CLOEXEC)
            except OSError as exc:
                raise describe_os_error(exc, "no descriptor to spare") from exc


#: Who else may give a descriptor back when the spare is gone (the pool of journal
#: descriptors, ``_writers.APPENDS``): each returns whether it closed one.
_give_backs: list[Callable[[], bool]] = []


def give_back_with(give_back: Callable[[], bool]) -> None:
    """Register ``give_back`` as a source of descriptors for a write out of them."""
    _give_backs.append(give_back)


def _give_back() -> bool:
    """Close the spare, or else a descriptor of a registered holder; whether one was closed."""
    global _spare
    with _spare_guard:
        if _spare is not None:
            os.close(_spare)
            _spare = None
            return True
    return any(give_back() for give_back in _give_backs)


def _reserve_after_fork_in_child() -> None:
    # The parent's reserve is the parent's; a guard held by another thread at the fork
    # would be held in the child for ever.
    global _spare, _spare_guard
    _spare_guard = threading.Lock()
    if _spare is not None:
        with contextlib.suppress(OSError):
            os.close(_spare)
        _spare = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reserve_after_fork_in_child)


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


def open_new(path: Path | str, *, dir_fd: int | None = None, reserve: bool = False) -> int:
    """Create ``path`` new, empty, and return its descriptor, open for appending.

    Raises:
        FileExistsError: anything is there already, a symlink included.
    """
    try:
        return open_file(
            path, os.O_CREAT | os.O_EXCL | APPEND_FLAGS, dir_fd=dir_fd, reserve=reserve
        )
    except FileExistsError as exc:
        link = os.path.islink(path) if dir_fd is None else _is_link(os.path.basename(path), dir_fd)
        what = "is a symlink: a run never writes through one" if link else "already exists"
        raise FileExistsError(
            errno.EEXIST, f"{str(path)!r} {what}; a run's files are created new"
        ) from exc


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
    fd = open_new(path, dir_fd=dir_fd, reserve=reserve)
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
) -> None:
    """Write ``path`` whole or not at all: a new temporary file beside it, then a rename.

    The rename replaces what is there (a symlink is replaced, its target untouched). With
    ``dir_fd``, ``path`` is taken by its name in that folder.
    """
    name = path.name if dir_fd is not None else str(path)
    temporary = str(Path(name).with_name(f".{path.name}.{secrets.token_hex(4)}.tmp"))
    create_new(Path(temporary), data, dir_fd=dir_fd)
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
    fd = open_file(path, os.O_RDONLY | NOFOLLOW)
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
    fd = open_file(path, os.O_RDONLY | NOFOLLOW)
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
    fd = open_file(path, APPEND_FLAGS, reserve=True)
    try:
        write_all(fd, data)
    finally:
        os.close(fd)


@contextlib.contextmanager
def open_folder(root: Path, *parts: str, create: bool, reserve: bool = False) -> Iterator[int]:
    """A descriptor of the folder ``root/part/...``, walked without following symlinks.

    ``root`` itself is the user's (it may be a symlink); every part below it must be a real
    folder (made if ``create``). Closed on leaving the block. ``reserve`` as for
    :func:`open_file`.

    Raises:
        FileExistsError: a part is a symlink or a file.
        FileNotFoundError: a part is missing and not ``create``.
    """
    if create:
        make_folder(root)
    fd = open_file(root, os.O_RDONLY | _DIRECTORY, reserve=reserve)
    try:
        for depth, part in enumerate(parts):
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=fd)
            try:
                flags = os.O_RDONLY | _DIRECTORY | NOFOLLOW
                child = open_file(part, flags, dir_fd=fd, reserve=reserve)
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


def file_id(fd: int) -> tuple[int, int]:
    """The identity of the file open as ``fd``: its inode and device."""
    mine = os.fstat(fd)
    return mine.st_ino, mine.st_dev


def file_at(path: Path | str, *, dir_fd: int | None = None) -> tuple[int, int] | None:
    """The identity of what is at ``path`` (a symlink itself, not followed), or ``None``."""
    try:
        there = os.stat(path, dir_fd=dir_fd, follow_symlinks=False)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return there.st_ino, there.st_dev


def is_at(fd: int, path: Path | str, *, dir_fd: int | None = None) -> bool:
    """Whether the file open as ``fd`` is the one at ``path`` now (a symlink there is not)."""
    return file_at(path, dir_fd=dir_fd) == file_id(fd)


@contextlib.contextmanager
def locked(path: Path | str, *, create: bool = True, reserve: bool = False) -> Iterator[int]:
    """``path`` (never followed; created if missing and ``create``) open and exclusively
    locked in the block, and the file at ``path`` for as long as the lock is held.

    For short critical sections between processes (a retry claiming a run); blocks until
    the lock is free. A lock goes with a file, not a name: who opened the file a moment
    before it was replaced or deleted would lock a file no longer there, beside whoever
    locks the new one. So once locked, the file is checked to be still the one at ``path``
    (``fstat`` against ``lstat``), and the name opened again if not. Whoever replaces or
    deletes the file at ``path`` does it holding this lock.

    Raises:
        FileNotFoundError: nothing at ``path`` (not ``create``).
    """
    flags = os.O_RDWR | NOFOLLOW | (os.O_CREAT if create else 0)
    while True:
        fd = open_file(path, flags, reserve=reserve)
        try:
            if sys.platform != "win32":
                fcntl.flock(fd, fcntl.LOCK_EX)
            if is_at(fd, path):
                break
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    try:
        yield fd
    finally:
        os.close(fd)
