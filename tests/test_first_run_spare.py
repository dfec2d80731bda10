"""A process's first run in a folder: its journal is made from a spare made with the writer
lock, in the ``.writers`` folder open already, not from one made by opening the folder again."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import trio

from runnable_trio import _files, _writerlock, _writers
from runnable_trio._filestore import FileRunLogStore
from runnable_trio._runlog import RunLog

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="flock")


def _spares(folder: Path) -> list[str]:
    return sorted(n for n in os.listdir(folder / ".writers") if n.endswith(".spare"))


def _journal_made_from_a_spare(folder: Path, run_id: str) -> bool:
    """Whether the spare's name left in ``.writers`` (deleted later, in a thread) is a second
    name of the run's journal."""
    journal = os.stat(folder / f"{run_id}.journal.jsonl").st_ino
    return [os.stat(folder / ".writers" / n).st_ino for n in _spares(folder)] == [journal]


def test_a_first_run_opens_the_writers_folder_once_before_its_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "store"
    store = FileRunLogStore(folder)
    opened: list[tuple[Path, tuple[str, ...]]] = []
    real = _files.open_folder

    def counted(root: Path, *parts: str, **kwargs: bool):  # type: ignore[no-untyped-def]
        opened.append((root, parts))
        return real(root, *parts, **kwargs)

    def no_new_spare(*args: object) -> None:
        raise AssertionError("a spare made by opening the folder again")

    with monkeypatch.context() as patched:
        patched.setattr(_writerlock, "open_folder", counted)
        patched.setattr(_writers, "open_folder", counted)
        patched.setattr(_writers, "_new_spare", no_new_spare)
        trio.run(store.create, RunLog("r1"))
    assert opened == [(folder, (".writers",))]  # the lock's, and the spare's with it
    assert _journal_made_from_a_spare(folder, "r1")
    assert store.load("r1").run_id == "r1"


def test_a_spare_not_made_with_the_lock_is_made_for_the_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "store"
    store = FileRunLogStore(folder)

    def out_of_descriptors(writers: int, token: str) -> None:
        raise OSError(24, "Too many open files")

    with monkeypatch.context() as patched:
        for module in (_writerlock, _writers):  # the lock's making, and the journal's
            patched.setattr(module, "spare_in", out_of_descriptors)
        with pytest.raises(OSError, match="Too many open files"):
            # The journal's own making meets the same and reports it, the lock not leaked.
            trio.run(store.create, RunLog("r0"))
    fresh = tmp_path / "other"
    calls: list[int] = []
    real = _writerlock.spare_in

    def once_failing(writers: int, token: str) -> tuple[str, tuple[int, int], int]:
        calls.append(writers)
        if len(calls) == 1:
            raise OSError(24, "Too many open files")
        return real(writers, token)

    with monkeypatch.context() as patched:
        for module in (_writerlock, _writers):
            patched.setattr(module, "spare_in", once_failing)
        other = FileRunLogStore(fresh)
        trio.run(other.create, RunLog("r1"))
    assert len(calls) == 2  # the lock's failed; the journal's own made one
    assert _journal_made_from_a_spare(fresh, "r1")
    assert other.load("r1").run_id == "r1"


def test_a_spare_made_meanwhile_by_another_thread_is_kept_and_the_new_one_deleted(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "store"
    folder.mkdir()
    _writers.APPENDS.make_spare(folder)  # (takes the lock, no spare with it: not a run's)
    kept = _spares(folder)
    assert len(kept) == 1
    lock = _writerlock.lock_of(folder)
    with _files.open_folder(folder, ".writers", create=False) as writers:
        made = _writerlock.spare_in(writers, lock.token)
    _writers.APPENDS._adopt(folder, *made)
    assert _spares(folder) == kept
    _writers.APPENDS.drop_spare(folder)
    assert _spares(folder) == []
