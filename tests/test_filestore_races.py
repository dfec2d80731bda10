"""The file store's claims between processes: a retry's lock, a run's end, a new run of the
same id, and what is planted or deleted in the store folder. (Found by an adversarial review:
each test holds threads at the racing point with events, no sleeps.)
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runnable_trio import RunConfigurationError, Status, _files, _filestore
from runnable_trio._filestore import FileRunLogStore
from runnable_trio._runlog import RunLog, StepLog

from .helpers import writers_swapped_for_a_symlink

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="flock")

if sys.platform != "win32":
    import fcntl


def _until(*events: threading.Event) -> None:
    """Wait (no time limit of its own: the test's timeout) until one of ``events`` is set."""
    while not any(event.wait(0.005) for event in events):
        pass


@pytest.fixture
def flock_watch(monkeypatch: pytest.MonkeyPatch) -> dict[str, threading.Event]:
    """Per thread name: an event set when that thread is about to block in ``flock``."""
    blocked: dict[str, threading.Event] = {}
    real = fcntl.flock

    def flock(fd: int, operation: int) -> None:
        event = blocked.get(threading.current_thread().name)
        if event is None or operation & fcntl.LOCK_NB:
            real(fd, operation)
            return
        try:
            real(fd, operation | fcntl.LOCK_NB)
        except BlockingIOError:
            event.set()
            real(fd, operation)

    monkeypatch.setattr(fcntl, "flock", flock)
    return blocked


class _Thread(threading.Thread):
    """A thread that keeps what its target returned or raised, and says when it ended."""

    def __init__(self, name: str, target: Callable[[], Any]) -> None:
        super().__init__(name=name, daemon=True)
        self._call = target
        self.done = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._call()
        except BaseException as exc:
            self.error = exc
        finally:
            self.done.set()


def _failed_run(store: FileRunLogStore, run_id: str = "r") -> RunLog:
    """A run recorded as failed (its snapshot, no journal), and its record reopened."""
    import trio

    run_log = RunLog(run_id)
    trio.run(store.create, run_log)
    run_log.steps["a"] = StepLog("a", "task", "a", status=Status.FAIL)
    run_log.end(Status.FAIL)
    trio.run(store.finish, run_log)
    return run_log


def _retry_of(store: FileRunLogStore, run_id: str = "r") -> RunLog:
    run_log = store.load(run_id)
    run_log.reopen()
    return run_log


def test_a_lock_whose_file_is_replaced_meanwhile_is_not_taken_beside_the_new_one(
    tmp_path: Path, flock_watch: dict[str, threading.Event]
) -> None:
    # A opens the file at the name, then (before it locks) the file there is replaced and B
    # locks the new one: a lock on the old file would let A in beside B.
    path = tmp_path / "lock"
    path.write_bytes(b"")
    opened, go, retried, inside_a = (threading.Event() for _ in range(4))
    real_open = _files.open_file
    opens = 0

    def open_file(*args: Any, **kwargs: Any) -> int:
        nonlocal opens
        fd = real_open(*args, **kwargs)
        if threading.current_thread().name == "A":
            opens += 1
            if opens == 1:
                opened.set()
                go.wait()
            else:
                retried.set()
        return fd

    def take() -> None:
        with _files.locked(path):
            inside_a.set()

    a = _Thread("A", take)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_files, "open_file", open_file)
        a.start()
        opened.wait()
        new = tmp_path / "new"
        new.write_bytes(b"")
        os.replace(new, path)  # the name's file replaced, as a retry replaces a journal
        with _files.locked(path):  # B
            go.set()
            _until(inside_a, retried)
            assert not inside_a.is_set(), "two holders of one lock at once"
        a.join()
    assert a.error is None
    assert inside_a.is_set()


def test_a_retry_racing_the_runs_end_keeps_its_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flock_watch: dict[str, threading.Event]
) -> None:
    # The run ends (its final snapshot in place, its journal not yet deleted) as a retry
    # checks it: the retry is accepted, then the end deletes the journal by name, the retry's.
    store = FileRunLogStore(tmp_path / "store")
    run_log = RunLog("r")
    import trio

    trio.run(store.create, run_log)
    run_log.end(Status.FAIL)
    snapshot_in, go = threading.Event(), threading.Event()
    real_replace = os.replace

    def replace(src: Any, dst: Any, **kwargs: Any) -> None:
        real_replace(src, dst, **kwargs)
        if threading.current_thread().name == "end" and Path(dst) == store.snapshot_path("r"):
            snapshot_in.set()
            go.wait()

    monkeypatch.setattr(os, "replace", replace)
    journal = store._journals.pop("r")
    end = _Thread("end", lambda: store._finish_files(run_log, journal))
    end.start()
    _until(snapshot_in, end.done)
    retry_log = _retry_of(store)
    flock_watch["retry"] = threading.Event()
    retry = _Thread("retry", lambda: store._reopen_files(retry_log))
    retry.start()
    _until(retry.done, flock_watch["retry"])  # accepted already, or waiting for the end
    go.set()
    end.join()
    retry.join()
    assert end.error is None
    assert retry.error is None
    assert store.journal_path("r").exists(), "the retry's journal was deleted by the run's end"
    assert store.load("r").status is Status.PROCESSING


def test_a_new_run_of_a_recorded_id_keeps_a_retrys_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A new run with the id of a failed run claims the journal's name, then finds the
    # snapshot and deletes "its" journal; a retry that took the journal in between loses it.
    store = FileRunLogStore(tmp_path / "store")
    _failed_run(store)
    claimed, go = threading.Event(), threading.Event()
    snapshot = str(store.snapshot_path("r"))
    real_present = _filestore._present

    def present(path: str | Path) -> bool:
        if threading.current_thread().name == "new" and str(path) == snapshot:
            claimed.set()
            go.wait()
        return real_present(path)

    monkeypatch.setattr(_filestore, "_present", present)
    new = _Thread("new", lambda: store._create_files(RunLog("r")))
    new.start()
    _until(claimed, new.done)
    store._reopen_files(_retry_of(store))  # the retry, accepted: the snapshot says FAIL
    go.set()
    new.join()
    assert isinstance(new.error, RunConfigurationError)
    assert store.journal_path("r").exists(), "the new run deleted the retry's journal"
    assert store.load("r").status is Status.PROCESSING


def test_a_spare_reached_through_a_planted_writers_symlink_is_refused(tmp_path: Path) -> None:
    import trio

    store = FileRunLogStore(tmp_path / "store")
    first = RunLog("r1")
    trio.run(store.create, first)
    trio.run(store.finish, first)  # makes the next run's spare ahead, in .writers
    writers = tmp_path / "store" / ".writers"
    (spare,) = (p.name for p in writers.iterdir() if p.name.endswith(".spare"))
    victim = writers_swapped_for_a_symlink(writers, spare)
    with pytest.raises(RunConfigurationError, match="symlink"):
        trio.run(store.create, RunLog("r2"))
    assert victim.read_text() == "not the store's\n"
    assert not store.journal_path("r2").exists()


def test_a_file_planted_in_place_of_the_spare_held_open_is_never_written_nor_kept(
    tmp_path: Path,
) -> None:
    # The spare made last is held open (the next run writes through its descriptor, no
    # open by name): a file put at its name since is what a link by name reaches. The run
    # must refuse it, leave it as it was, and leave no journal behind.
    import trio

    store = FileRunLogStore(tmp_path / "store")
    first = RunLog("r1")
    trio.run(store.create, first)
    trio.run(store.finish, first)  # the next run's spare, made ahead and held open
    writers = tmp_path / "store" / ".writers"
    (spare,) = (p for p in writers.iterdir() if p.name.endswith(".spare"))
    spare.unlink()
    spare.write_text("planted\n")
    with pytest.raises(RunConfigurationError, match="replaced before it was linked"):
        trio.run(store.create, RunLog("r2"))
    assert spare.read_text() == "planted\n"
    assert not os.path.lexists(store.journal_path("r2"))
    later = RunLog("r3")  # and the store goes on: a new spare for the next run
    trio.run(store.create, later)
    trio.run(store.finish, later)
    assert store.load("r3").status is later.status


def test_a_journal_linked_from_a_spare_swapped_for_a_symlink_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The spare is opened, then its name is swapped for a symlink before the link: the
    # journal's name would be the symlink.
    import trio

    from runnable_trio import _writers

    store = FileRunLogStore(tmp_path / "store")
    first = RunLog("r1")
    trio.run(store.create, first)
    trio.run(store.finish, first)
    outside = tmp_path / "outside"
    outside.write_text("outside\n")
    real_link = os.link

    def link(src: Any, dst: Any, **kwargs: Any) -> None:
        where = kwargs.get("src_dir_fd")
        os.unlink(src, dir_fd=where)  # the spare's name, now a symlink out of the store
        os.symlink(outside, src, dir_fd=where)
        real_link(src, dst, **kwargs)

    monkeypatch.setattr(_writers.os, "link", link)
    with pytest.raises(RunConfigurationError):
        trio.run(store.create, RunLog("r2"))
    monkeypatch.undo()
    assert not os.path.lexists(store.journal_path("r2"))
    assert outside.read_text() == "outside\n"


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_a_process_using_many_folders_holds_few_descriptors(tmp_path: Path) -> None:
    import trio

    async def runs() -> None:
        for n in range(40):
            store = FileRunLogStore(tmp_path / f"store{n}")
            run_log = RunLog("r")
            await store.create(run_log)
            run_log.end(Status.SUCCESS)
            await store.finish(run_log)

    before = _open_descriptors()
    trio.run(runs)
    assert _open_descriptors() - before <= 8


async def test_a_folder_deleted_mid_run_still_gets_the_final_record(tmp_path: Path) -> None:
    store = FileRunLogStore(tmp_path / "store")
    run_log = RunLog("r")
    await store.create(run_log)
    run_log.steps["a"] = step = StepLog("a", "task", "a", status=Status.SUCCESS)
    await store.step_finished(run_log, step)
    shutil.rmtree(store.folder)
    run_log.steps["b"] = step = StepLog("b", "task", "b", status=Status.SUCCESS)
    await store.step_finished(run_log, step)
    run_log.end(Status.SUCCESS)
    await store.finish(run_log)
    loaded = FileRunLogStore(tmp_path / "store").load("r")
    assert (loaded.status, list(loaded.steps)) == (Status.SUCCESS, ["a", "b"])


_KILLED_WRITING_ITS_SNAPSHOT = """
import os, signal, sys, trio
from runnable_trio._filestore import FileRunLogStore
from runnable_trio._runlog import RunLog, Status

real_replace = os.replace

def replace(src, dst, **kwargs):
    if str(dst).endswith("r.json"):
        os.kill(os.getpid(), signal.SIGKILL)  # its temporary file written, not yet renamed
    real_replace(src, dst, **kwargs)

os.replace = replace
store = FileRunLogStore(sys.argv[1])
run_log = RunLog("r")
trio.run(store.create, run_log)
run_log.end(Status.SUCCESS)
trio.run(store.finish, run_log)
"""


@pytest.mark.slow
def test_a_snapshots_temporary_file_left_by_a_kill_is_swept(tmp_path: Path) -> None:
    import subprocess

    import trio

    folder = tmp_path / "store"
    script = tmp_path / "killed.py"
    script.write_text(_KILLED_WRITING_ITS_SNAPSHOT)
    done = subprocess.run([sys.executable, str(script), str(folder)], check=False)
    assert done.returncode == -9

    def temporaries() -> list[str]:
        return sorted(p.name for p in folder.rglob("*") if p.name.endswith(".tmp"))

    assert temporaries()  # the kill left one
    trio.run(FileRunLogStore(folder).create, RunLog("next"))  # a new writer sweeps
    assert temporaries() == []
    assert FileRunLogStore(folder).load("r").status is Status.PROCESSING  # still its journal
