"""A run's record put in place whole or not at all (the file store's snapshot).

The record is written to a new temporary file in the store's ``.writers`` folder, named by the
writer's token, then renamed over its place: a reader sees the old record or the new one,
never part of one, and a temporary file left by a process killed before its rename is swept
with that writer's other files (``_writerlock``); beside the snapshot it would stay for ever.

A final record is encoded and written in chunks (:func:`record_chunks`), never held whole.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from ._files import create_new, open_folder
from ._runlog import RunLog
from ._steplines import StepTexts, record_parts
from ._writerlock import TEMPORARY, WRITERS_FOLDER, WriterLock

__all__ = ["record_chunks", "whole", "write_whole"]

#: About how much of a final record is encoded and written at a time.
_CHUNK = 1 << 16


def write_whole(path: Path, data: bytes, writer: WriterLock) -> None:
    """Put ``data`` at ``path`` whole or not at all (see :func:`whole`)."""
    with whole(path.parent, data, writer) as put:
        put(path)


@contextlib.contextmanager
def whole(
    folder: Path, data: bytes | Iterable[bytes], writer: WriterLock
) -> Iterator[Callable[[Path], None]]:
    """``data`` in a new temporary file, and a function that renames it to a path in
    ``folder`` (the file is deleted on leaving the block if it was not put anywhere).

    The temporary file is made in ``.writers`` (the folder made again if it was deleted).
    ``data`` may be chunks, made as they are written: a chunk that cannot be made or written
    leaves no temporary file either.
    """
    name = f"{writer.token}.{secrets.token_hex(4)}{TEMPORARY}"
    with open_folder(folder, WRITERS_FOLDER, create=True, reserve=True) as writers:
        try:
            create_new(Path(name), data, dir_fd=writers, reserve=True)
        except FileExistsError:
            raise  # the name is another file's
        except BaseException:
            _discard(name, writers)
            raise
        put = False

        def rename(path: Path) -> None:
            nonlocal put
            os.replace(name, path, src_dir_fd=writers)
            put = True

        try:
            yield rename
        finally:
            if not put:
                _discard(name, writers)


def _discard(name: str, folder: int) -> None:
    with contextlib.suppress(OSError):
        os.unlink(name, dir_fd=folder)


def record_chunks(run_log: RunLog, texts: StepTexts) -> Iterator[bytes]:
    """The final record's bytes (``run_record(run_log, None)`` encoded, the steps' texts
    reused), in chunks of about :data:`_CHUNK`, made as they are written.

    Not one string and one bytes of the whole record: a chain of 5,000 steps has a 4 MB
    record, and buffers that big are memory the allocator maps for them and hands back when
    they are freed, so every long run faulted 8 MB of pages in again (0.4 page faults per
    step, a few microseconds each on a virtual machine). Chunks this size reuse the same
    memory. A UTF-8 text encoded a slice at a time is the same bytes as encoded whole.
    """
    batch: list[str] = []
    size = 0
    for part in record_parts(run_log, None, texts):
        length = len(part)
        if length > _CHUNK:  # a long pipeline's definition
            if batch:
                yield "".join(batch).encode()
                batch, size = [], 0
            for start in range(0, length, _CHUNK):
                yield part[start : start + _CHUNK].encode()
            continue
        batch.append(part)
        size += length
        if size >= _CHUNK:
            yield "".join(batch).encode()
            batch, size = [], 0
    if batch:
        yield "".join(batch).encode()
