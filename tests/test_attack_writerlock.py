"""Attacks on the writer lock's token and the spare made with it (``_writerlock``: the token
``<pid>-<12 hex>`` and the spare's ``<token>.<8 hex>.spare`` drawn by ``os.urandom``, the pid
cached and set again at a fork, the spare opened by its name in the ``.writers`` folder).
Something planted where a spare or lock goes is never written through and never truncated
(DESIGN.md, "Files stay under their roots"); a forked child writes under a token of its own."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from runnable_trio._filestore import FileRunLogStore
from runnable_trio._runlog import RunLog

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="flock, fork")

_TOKEN_HEX = "a1" * 6
_SPARE_HEX = "b2" * 4


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> str:
    """The writer lock's token and its first spare's name drawn as a hostile user guessed
    them (every other draw is random)."""
    real = os.urandom
    spares = iter([bytes.fromhex(_SPARE_HEX)])

    def guessed(size: int) -> bytes:
        if size == 6:
            return bytes.fromhex(_TOKEN_HEX)
        if size == 4:
            return next(spares, None) or real(size)
        return real(size)

    monkeypatch.setattr(os, "urandom", guessed)
    return f"{os.getpid()}-{_TOKEN_HEX}"


async def test_a_link_planted_at_the_spares_name_is_not_written_through(
    tmp_path: Path, drawn: str
) -> None:
    folder = tmp_path / "store"
    writers = folder / ".writers"
    writers.mkdir(parents=True)
    victim = tmp_path / "victim.txt"
    victim.write_text("not the store's\n")
    (writers / f"{drawn}.{_SPARE_HEX}.spare").symlink_to(victim)
    store = FileRunLogStore(folder)
    await store.create(RunLog("r"))
    journal = folder / "r.journal.jsonl"
    assert not journal.is_symlink()
    assert not journal.samefile(victim)
    await store.finish(RunLog("r"))
    assert victim.read_text() == "not the store's\n"
    assert store.exists("r")
    assert (writers / f"{drawn}.lock").exists()  # the lock is the token's


async def test_a_file_planted_at_the_spares_name_is_not_truncated(
    tmp_path: Path, drawn: str
) -> None:
    folder = tmp_path / "store"
    writers = folder / ".writers"
    writers.mkdir(parents=True)
    planted = writers / f"{drawn}.{_SPARE_HEX}.spare"
    planted.write_text("planted\n")
    kept = tmp_path / "kept"  # the planted file itself, by another name
    os.link(planted, kept)
    store = FileRunLogStore(folder)
    await store.create(RunLog("r"))
    journal = folder / "r.journal.jsonl"
    assert not journal.samefile(kept)
    lines = journal.read_text().splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0])["run_id"] == "r"  # the run's own record, alone
    # Found by the sweep of the lock taken, a spare of a token with no lock held is a dead
    # writer's: its name deleted, the file itself never written to.
    assert kept.read_text() == "planted\n"


async def test_a_link_planted_at_the_locks_name_is_not_written_through(
    tmp_path: Path, drawn: str
) -> None:
    # The token drawn names a lock that is there already, a link: the lock is never taken
    # through it, and its target stays as it was.
    folder = tmp_path / "store"
    writers = folder / ".writers"
    writers.mkdir(parents=True)
    victim = tmp_path / "victim.lock"
    victim.write_text("not a lock\n")
    (writers / f"{drawn}.lock").symlink_to(victim)
    store = FileRunLogStore(folder)
    with contextlib.suppress(OSError):  # refused (today: "File exists"), or another token
        await store.create(RunLog("r"))
    assert victim.read_text() == "not a lock\n"
    assert (writers / f"{drawn}.lock").is_symlink()


_FORKED = textwrap.dedent(
    """
    import json, os, sys, trio
    from pathlib import Path
    from runnable_trio._filestore import FileRunLogStore
    from runnable_trio._runlog import RunLog

    folder = Path(sys.argv[1])
    store = FileRunLogStore(folder)

    async def ended(run_id):
        await store.create(RunLog(run_id))
        await store.finish(RunLog(run_id))

    trio.run(ended, "p1")  # the parent's lock and token, and the spare it made ahead
    trio.run(store.create, RunLog("parent"))  # live in the parent

    def journal(run_id):
        path = folder / f"{run_id}.journal.jsonl"
        return path.stat().st_ino, path.read_text().splitlines()

    def writer(run_id):
        return json.loads(journal(run_id)[1][0])["_summary"]["writer"]

    read, write = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(read)
        trio.run(store.create, RunLog("child"))
        report = {"pid": os.getpid(), "writer": writer("child"), "alive": store.alive("child")}
        os.write(write, json.dumps(report).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        report = json.loads(pipe.read())
    os.waitpid(child, 0)
    trio.run(store.create, RunLog("p2"))  # from the parent's spare, which the child left it
    report["parent_pid"] = os.getpid()
    report["parent_writer"] = writer("parent")
    report["p2_writer"] = writer("p2")
    report["child_alive_after_exit"] = store.alive("child")
    report["parent_alive"] = store.alive("parent")
    report["journals"] = {run_id: journal(run_id) for run_id in ("parent", "child", "p2")}
    print(json.dumps(report))
    """
)


def test_a_forked_child_writes_under_a_token_of_its_own_pid(tmp_path: Path) -> None:
    # The pid in the token (and in the pool's keys) is cached at import and set again at the
    # fork: the child's first run takes a lock of its own, named by its own pid, which goes
    # with it, and never the spare its parent made ahead (a file of the parent's token).
    script = tmp_path / "forked.py"
    script.write_text(_FORKED)
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "store")],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    report = json.loads(done.stdout)
    assert report["writer"].startswith(f"{report['pid']}-")
    assert report["parent_writer"].startswith(f"{report['parent_pid']}-")
    assert report["writer"] != report["parent_writer"]
    assert report["p2_writer"] == report["parent_writer"]
    assert report["alive"] is True
    assert report["child_alive_after_exit"] is False
    assert report["parent_alive"] is True
    journals = report["journals"]
    assert len({inode for inode, _ in journals.values()}) == 3  # three files, none shared
    for run_id, (_, lines) in journals.items():
        assert [json.loads(line)["run_id"] for line in lines] == [run_id]
