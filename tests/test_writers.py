"""What a writing process holds (its writer lock per folder, its spares, its pooled journal
descriptors) stays right when the store folder is deleted, when the process forks, and when
something is planted among the writers' files. (Found by a review of the journal-first layout.)
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from runnable_trio._filestore import FileRunLogStore
from runnable_trio._runlog import RunLog

from .helpers import writers_swapped_for_a_symlink

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="flock, fork")


async def test_a_run_started_after_the_folder_was_deleted_looks_alive_while_it_goes(
    tmp_path: Path,
) -> None:
    # c18808a: the folder (with this process's lock file) deleted between runs is made again
    # by the next spare, but the cached writer lock is not taken again: the new run's record
    # names a token with no lock file, so every reader says it is dead while it runs.
    folder = tmp_path / "store"
    store = FileRunLogStore(folder)
    await store.create(RunLog("r1"))
    await store.finish(RunLog("r1"))
    shutil.rmtree(folder)
    await store.create(RunLog("r2"))  # live in this process, never finished
    assert store.alive("r2") is True, "a live run looks dead: a retry elsewhere may run it"


_FORKS = textwrap.dedent(
    """
    import os, sys, time, trio
    from runnable_trio._filestore import FileRunLogStore
    from runnable_trio._runlog import RunLog

    store = FileRunLogStore(sys.argv[1])
    trio.run(store.create, RunLog("f"))
    child = os.fork()
    if child == 0:  # e.g. a multiprocessing worker (fork), or a daemon a step starts
        os.write(1, b"forked\\n")  # its fork hooks have run (one write: lines stay whole)
        time.sleep(600)
        os._exit(0)
    os.write(1, f"{child}\\n".encode())
    time.sleep(600)
    """
)


def test_a_killed_writers_run_is_dead_while_a_forked_child_of_it_lives(tmp_path: Path) -> None:
    # The writer's lock descriptor is O_CLOEXEC but inherited by fork(): a child that does not
    # exec holds the parent's flock, so the parent's PROCESSING runs look alive (retry refused)
    # for as long as the child lives, and its lock file and spares are never swept.
    folder = tmp_path / "store"
    script = tmp_path / "forks.py"
    script.write_text(_FORKS)
    parent = subprocess.Popen(
        [sys.executable, str(script), str(folder)], stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    with parent.stdout:
        # The parent's line (the child's pid) and the child's, once its fork hooks have run
        # (before, the child still holds the parent's lock), in either order.
        lines = {parent.stdout.readline().strip() for _ in range(2)}
    lines.discard("forked")
    (child,) = map(int, lines)
    try:
        parent.send_signal(signal.SIGKILL)
        assert parent.wait() == -9
        assert FileRunLogStore(folder).alive("f") is False, (
            "the SIGKILLed writer's run looks alive: its forked child holds the writer's lock"
        )
    finally:
        os.kill(child, signal.SIGKILL)


_FORK_WHILE_POOL_BUSY = textwrap.dedent(
    """
    import os, sys, threading, trio
    from runnable_trio._writers import APPENDS
    from runnable_trio._filestore import FileRunLogStore
    from runnable_trio._runlog import RunLog

    folder = sys.argv[1]
    held, done = threading.Event(), threading.Event()

    def busy():  # the loop's thread appending a line, or making a spare inline, at the fork
        with APPENDS._lock:
            held.set()
            done.wait()

    thread = threading.Thread(target=busy)
    thread.start()
    held.wait()
    child = os.fork()
    if child == 0:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, 1)  # the test reads the parent's output to its end
        os.dup2(fd, 2)
        trio.run(FileRunLogStore(folder).create, RunLog("c"))  # the child's own first run
        os._exit(0)
    done.set()
    thread.join()
    print(child, flush=True)
    """
)


def test_a_child_forked_while_the_pool_is_busy_can_start_a_run(tmp_path: Path) -> None:
    # AppendPool._lock (and _locks_guard, _spare_guard) are not reset after fork: a child
    # forked while another thread holds one blocks forever on its first run. No
    # os.register_at_fork anywhere, though the pool and the locks are keyed by pid for forks.
    script = tmp_path / "fork.py"
    script.write_text(_FORK_WHILE_POOL_BUSY)
    parent = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "store")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    child = int(parent.stdout)

    deadline = time.monotonic() + 30  # the child needs milliseconds
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.kill(child, signal.SIGKILL)
        pytest.fail("the forked child hangs on APPENDS._lock, held by a thread of its parent")
    assert (tmp_path / "store" / "c.journal.jsonl").exists()


@pytest.mark.parametrize("name", ["12345-0123456789ab.lock", "12345-0123456789ab.x.spare"])
async def test_a_folder_planted_in_writers_does_not_stop_every_run(
    tmp_path: Path, name: str
) -> None:
    # _sweep (_files.py:563-570) unlinks what it takes for a dead writer's lock or spare and
    # lets anything but FileNotFoundError out: a folder (or a file it may not delete) under
    # such a name makes every new process's first run fail, for good.
    folder = tmp_path / "store"
    (folder / ".writers" / name).mkdir(parents=True)
    store = FileRunLogStore(folder)
    await store.create(RunLog("r"))
    assert store.exists("r")


def test_a_run_after_one_ended_starts_from_the_spare_made_ahead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Making a file is what a run's start must not wait for: the spare the last run's end
    # made is found by the journal's folder, however the store names it.
    import trio

    from runnable_trio import _writers

    for folder in (tmp_path / "store", tmp_path / "a" / ".." / "b"):
        store = FileRunLogStore(folder)
        first = RunLog("r1")
        trio.run(store.create, first)
        trio.run(store.finish, first)

        def no_new_spare(*args: object) -> None:
            raise AssertionError("a spare made at the run's start")

        with monkeypatch.context() as patched:
            patched.setattr(_writers, "_new_spare", no_new_spare)
            trio.run(store.create, RunLog("r2"))
        assert store.load("r2").run_id == "r2"


def _ended_once(folder: Path) -> FileRunLogStore:
    """The store of ``folder`` after one run there (its end made the next spare ahead)."""
    import trio

    store = FileRunLogStore(folder)
    first = RunLog("r1")
    trio.run(store.create, first)
    trio.run(store.finish, first)
    return store


def test_a_run_in_the_folder_of_the_last_spare_opens_no_file_to_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The spare made last stays open from its making: the next run's journal is written
    # through that descriptor, the file made, so neither an open nor an identity (fstat) is
    # on the way to its first event. Its journal is still checked once linked.
    import trio

    from runnable_trio import _writerlock, _writers
    from runnable_trio._files import file_at as real_file_at

    store = _ended_once(tmp_path / "store")

    def refused(*args: object, **kwargs: object) -> None:
        raise AssertionError("the spare opened, or its identity asked, at the run's start")

    checked: list[object] = []

    def file_at(path: str, **kwargs: Any) -> object:
        checked.append(path)
        return real_file_at(path, **kwargs)

    with monkeypatch.context() as patched:
        for module in (_writers, _writerlock):
            patched.setattr(module, "open_file", refused)
            patched.setattr(module, "file_id", refused)
            patched.setattr(module, "file_at", file_at)
        trio.run(store.create, RunLog("r2"))
    assert checked == [str(store.journal_path("r2"))]
    assert store.load("r2").run_id == "r2"


def test_a_spare_of_another_folder_is_opened_and_checked_by_its_identity(
    tmp_path: Path,
) -> None:
    # Only the spare made last is held open: an earlier folder's spare is opened by name,
    # and a symlink planted at its .writers since is refused before anything is written.
    import trio

    from runnable_trio import RunConfigurationError

    store = _ended_once(tmp_path / "store")
    writers = tmp_path / "store" / ".writers"
    (spare,) = (p.name for p in writers.iterdir() if p.name.endswith(".spare"))
    _ended_once(tmp_path / "other")  # its spare is the one held open now
    victim = writers_swapped_for_a_symlink(writers, spare)
    with pytest.raises(RunConfigurationError, match="is not the spare this process made"):
        trio.run(store.create, RunLog("r2"))
    assert victim.read_text() == "not the store's\n"
    assert victim.stat().st_nlink == 1  # never linked into the store either
    assert not os.path.lexists(store.journal_path("r2"))


def test_a_process_out_of_descriptors_gets_the_open_spare_back_first(tmp_path: Path) -> None:
    import trio

    from runnable_trio._writers import APPENDS

    _ended_once(tmp_path / "store")
    held = APPENDS._open_spare
    assert held is not None
    assert APPENDS.give_back()
    assert APPENDS._open_spare is None
    with pytest.raises(OSError, match="Bad file descriptor"):
        os.fstat(held[1])  # closed
    store = FileRunLogStore(tmp_path / "store")
    trio.run(store.create, RunLog("r2"))  # from the same spare, opened by name
    assert store.load("r2").run_id == "r2"
