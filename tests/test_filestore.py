"""The file store's layout: a run is its journal alone until its final snapshot goes in."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from runnable_trio import (
    AsyncPipeline,
    AsyncPythonTask,
    RunConfigurationError,
    Status,
    _filestore,
    retry_stream,
)
from runnable_trio._filestore import FileRunLogStore
from runnable_trio._runlog import RunLog, StepLog

from .helpers import collect
from .test_rerun import crash, load_module

STORE = Path(".run_log_store")


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


async def ok() -> str:
    return "fine"


async def test_a_running_run_is_read_from_its_journal_alone() -> None:
    seen: dict[str, Any] = {}

    async def look() -> None:
        store = FileRunLogStore()
        seen["files"] = files_in(STORE)
        seen["exists"] = store.exists("r1")
        seen["record"] = store.load("r1")
        seen["runs"] = store.runs()
        seen["alive"] = store.alive("r1")

    pipeline = AsyncPipeline(
        [AsyncPythonTask("a", ok, returns=["x"]), AsyncPythonTask("look", look)], name="demo"
    )
    await collect(pipeline, run_id="r1", tag="t", parameters={"p": 1})
    assert seen["files"] == [".writers", "r1.journal.jsonl"]  # no snapshot while it goes
    assert seen["exists"] is True
    record = seen["record"]
    assert (record.status, record.tag, record.pipeline_name) == (Status.PROCESSING, "t", "demo")
    assert record.parameters_in == {"p": 1}
    assert record.definition["name"] == "demo"
    assert record.steps["a"].assigned == {"x": "fine"}
    (summary,) = seen["runs"]
    assert (summary.run_id, summary.status, summary.alive) == ("r1", Status.PROCESSING, True)
    assert seen["alive"] is True
    assert files_in(STORE) == [".writers", "r1.json"]  # ended: the snapshot, the journal gone


async def test_the_id_of_a_run_that_has_ended_is_refused_past_the_early_check() -> None:
    # The journal claims the id, but a run that has ended has no journal any more: its
    # snapshot refuses the new run just after, and the new run's journal goes again.
    first = RunLog("r")
    store = FileRunLogStore()
    await store.create(first)
    first.end(Status.SUCCESS)
    await store.finish(first)
    before = (STORE / "r.json").read_bytes()
    with pytest.raises(RunConfigurationError, match="a run with id 'r' already exists"):
        await FileRunLogStore().create(RunLog("r"))
    assert files_in(STORE) == [".writers", "r.json"]
    assert (STORE / "r.json").read_bytes() == before
    assert FileRunLogStore().load("r").status is Status.SUCCESS


async def test_a_second_run_with_a_live_runs_id_is_refused() -> None:
    await FileRunLogStore().create(RunLog("r"))
    journal = (STORE / "r.journal.jsonl").read_bytes()
    with pytest.raises(RunConfigurationError, match="a run with id 'r' already exists"):
        await FileRunLogStore().create(RunLog("r"))
    assert (STORE / "r.journal.jsonl").read_bytes() == journal  # the live run's, untouched


@pytest.mark.parametrize("reader", ["load", "runs"])
async def test_a_reader_racing_the_runs_end_finds_its_final_snapshot(
    monkeypatch: pytest.MonkeyPatch, reader: str
) -> None:
    # The reader finds no snapshot; the run ends (snapshot in, journal gone) before it looks
    # at the journal: it looks at the snapshot again.
    store = FileRunLogStore()
    run_log = RunLog("r")
    await store.create(run_log)
    run_log.steps["a"] = StepLog("a", "task", "a", status=Status.SUCCESS)
    run_log.end(Status.SUCCESS)
    journal = store.journal_path("r")
    own = store._journals["r"]
    for name in ("read_file", "read_head"):
        original = getattr(_filestore, name)

        def racing(path: Path, *args: Any, original: Any = original) -> bytes:
            if path == journal and journal.exists():
                store._finish_files(run_log, own)  # the run ends just now
            result: bytes = original(path, *args)
            return result

        monkeypatch.setattr(_filestore, name, racing)
    if reader == "load":
        loaded = store.load("r")
        assert (loaded.status, list(loaded.steps)) == (Status.SUCCESS, ["a"])
    else:
        (summary,) = store.runs()
        assert (summary.run_id, summary.status, summary.alive) == ("r", Status.SUCCESS, False)
    assert not journal.exists()


def test_a_file_at_the_journal_that_is_no_run_is_no_run(tmp_path: Path) -> None:
    (tmp_path / "r.journal.jsonl").write_text(
        json.dumps({"step": {"name": "a"}}) + "\n"  # a journal line, but no record before it
    )
    store = FileRunLogStore(tmp_path)
    assert store.exists("r") is False
    assert store.runs() == []
    assert store.alive("r") is False
    with pytest.raises(RunConfigurationError, match="is not a run log"):
        store.load("r")


_KILLED_AT_FIRST_EVENT = textwrap.dedent(
    """
    import os, signal, sys, trio
    from runnable_trio import AsyncPythonTask

    async def first():
        yield {"type": "first"}
        if sys.argv[1] == "waits":
            await trio.sleep_forever()

    async def main():
        pipeline = AsyncPythonTask("first", first).as_async_pipeline()
        run = pipeline.execute_streaming("config.yaml", run_id="k", tag="t", parameters={"p": 1})
        async for _ in run:
            os.kill(os.getpid(), signal.SIGKILL)  # dies as its first event arrives

    trio.run(main)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("step", ["waits", "ends"])
def test_a_run_killed_at_its_first_event_has_a_record_the_readers_parse(
    tmp_path: Path, step: str
) -> None:
    # "ends": the step ends right after its event, which its consumer has before the step's
    # end is recorded (_events.EventSink.hand_over): the run's record is there all the same.
    (tmp_path / "victim.py").write_text(_KILLED_AT_FIRST_EVENT)
    # No git probe: a git child forked at that moment holds the writer's lock until its exec.
    (tmp_path / "config.yaml").write_text("code_identity: false\n")
    done = subprocess.run([sys.executable, "victim.py", step], cwd=tmp_path, check=False)
    assert done.returncode == -9
    folder = tmp_path / ".run_log_store"
    assert files_in(folder) == [".writers", "k.journal.jsonl"]
    for line in (folder / "k.journal.jsonl").read_text().splitlines():
        json.loads(line)
    store = FileRunLogStore(folder)
    assert store.exists("k") is True
    record = store.load("k")
    assert (record.status, record.tag, record.parameters_in) == (Status.PROCESSING, "t", {"p": 1})
    assert record.definition_hash  # the definition is recorded: the run can be retried
    (summary,) = store.runs()
    assert (summary.run_id, summary.status, summary.alive) == ("k", Status.PROCESSING, False)
    assert store.alive("k") is False


@pytest.mark.slow
async def test_a_run_killed_before_its_snapshot_is_retried_into_one(tmp_path: Path) -> None:
    crash(tmp_path)  # killed in its second step
    assert files_in(STORE) == [".writers", "crashed.journal.jsonl"]
    assert FileRunLogStore().load("crashed").steps["first"].status is Status.SUCCESS
    async with retry_stream(load_module(tmp_path).pipeline, "crashed") as events:
        async for _ in events:
            pass
    assert events.run_log.status is Status.SUCCESS
    assert (tmp_path / "calls.txt").read_text().split() == ["first", "second", "second"]
    assert files_in(STORE) == [".writers", "crashed.json"]
    assert FileRunLogStore().load("crashed").status is Status.SUCCESS


def test_a_journal_beside_a_snapshot_keeps_its_steps_past_its_first_record(
    tmp_path: Path,
) -> None:
    # A retry rewrites the snapshot before it empties the journal: a reader in between finds
    # the journal's first record still there, and every step after it.
    from runnable_trio._filestore import _encode
    from runnable_trio._steplines import step_line

    record = _encode(RunLog("r"), None)
    (tmp_path / "r.json").write_bytes(record)
    step = StepLog("a", "task", "a", status=Status.SUCCESS)
    (tmp_path / "r.journal.jsonl").write_bytes(record + b"\n" + step_line(step).encode() + b"\n")
    assert list(FileRunLogStore(tmp_path).load("r").steps) == ["a"]


# A run's journal can be a spare made ahead (``_files.AppendPool``): the first record is
# written into it, then it is linked to the journal's name, then its own name goes. A process
# killed between those leaves one of these two states; the next process's sweep clears them.

DEAD = "12345-0123456789ab"  # a writer whose process is gone: its lock file is held by none


def _dead_writers_folder(tmp_path: Path) -> tuple[Path, Path]:
    folder = tmp_path / "store"
    (folder / ".writers").mkdir(parents=True)
    (folder / ".writers" / f"{DEAD}.lock").write_text("")
    return folder, folder / ".writers" / f"{DEAD}.0a0b0c0d.spare"


async def test_killed_after_writing_its_spare_before_linking_it_no_run_is_left(
    tmp_path: Path,
) -> None:
    from runnable_trio._filestore import _encode

    folder, spare = _dead_writers_folder(tmp_path)
    spare.write_bytes(_encode(RunLog("r"), DEAD) + b"\n")
    store = FileRunLogStore(folder)
    assert store.exists("r") is False
    assert store.runs() == []
    with pytest.raises(KeyError):
        store.load("r")
    await store.create(RunLog("r"))  # the id was never claimed; this process sweeps
    assert not spare.exists()
    assert store.load("r").status is Status.PROCESSING


async def test_killed_after_linking_its_spare_the_journal_is_the_run(tmp_path: Path) -> None:
    from runnable_trio._filestore import _encode
    from runnable_trio._steplines import step_line
    from runnable_trio._writerlock import writer_lock

    folder, spare = _dead_writers_folder(tmp_path)
    journal = folder / "r.journal.jsonl"
    step = StepLog("a", "task", "a", status=Status.SUCCESS)
    journal.write_bytes(_encode(RunLog("r"), DEAD) + b"\n" + step_line(step).encode() + b"\n")
    os.link(journal, spare)
    store = FileRunLogStore(folder)
    for _ in range(2):  # before and after the sweep
        loaded = store.load("r")
        assert (loaded.status, list(loaded.steps)) == (Status.PROCESSING, ["a"])
        assert store.alive("r") is False
        writer_lock(folder)  # this process's lock: it sweeps the dead writer's files
        assert not spare.exists()
    with pytest.raises(RunConfigurationError, match="already exists"):
        await store.create(RunLog("r"))


async def test_a_folder_deleted_between_runs_is_made_again() -> None:
    import shutil

    await collect(AsyncPythonTask("a", ok).as_async_pipeline(), run_id="r1")
    shutil.rmtree(STORE)  # with this process's lock and spare
    await collect(AsyncPythonTask("a", ok).as_async_pipeline(), run_id="r2")
    assert FileRunLogStore().load("r2").status is Status.SUCCESS
