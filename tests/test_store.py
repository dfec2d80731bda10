"""Run-log stores: the file store's files, journal, atomic ids, final statuses, SIGKILL, reader."""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from runnable_trio import (
    AsyncPipeline,
    AsyncPythonTask,
    ExecutionFailedError,
    Map,
    MemoryRunLogStore,
    RunConfigurationError,
    Status,
)
from runnable_trio._filestore import FileRunLogStore
from runnable_trio._reader import list_runs, read_run_log
from runnable_trio._runlog import RunLog, StepLog
from runnable_trio._store import RunLogStore, RunSummary

from .helpers import collect

STORE = Path(".run_log_store")


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def snapshot(run_id: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((STORE / f"{run_id}.json").read_text())
    return data


async def ok() -> str:
    return "fine"


async def boom() -> None:
    raise ValueError("boom")


# --- the default store: files --------------------------------------------------------------


async def test_a_run_is_recorded_in_a_json_file_by_default() -> None:
    pipeline = AsyncPipeline([AsyncPythonTask("a", ok, returns=["x"])], name="demo")
    await collect(pipeline, run_id="r1", tag="nightly", parameters={"p": 1})
    data = snapshot("r1")
    assert data["status"] == "SUCCESS"
    assert data["tag"] == "nightly"
    assert data["parameters_in"] == {"p": 1}
    assert data["parameters_out"] == {"p": 1, "x": "fine"}
    assert data["steps"]["a"]["attempts"][0]["status"] == "SUCCESS"
    assert data["definition"]["name"] == "demo"
    assert len(data["definition_hash"]) == 64
    # The journal is gone, no temporary file is left behind.
    assert files_in(STORE) == [".writers", "r1.json"]  # .writers: the process lock


async def test_each_finished_step_is_readable_while_the_run_goes() -> None:
    seen: list[RunLog] = []

    async def look() -> None:
        seen.append(FileRunLogStore().load("r1"))

    pipeline = AsyncPipeline(
        [AsyncPythonTask("a", ok, returns=["x"]), AsyncPythonTask("look", look)]
    )
    await collect(pipeline, run_id="r1")
    (during,) = seen
    assert during.status is Status.PROCESSING
    assert during.steps["a"].status is Status.SUCCESS
    assert during.steps["a"].assigned == {"x": "fine"}
    assert "look" not in during.steps  # still running: only finished steps are journaled


def test_journal_lines_cut_short_by_a_crash_are_ignored(tmp_path: Path) -> None:
    store = FileRunLogStore(tmp_path)
    run_log = RunLog("r1")
    (tmp_path / "r1.json").write_text(json.dumps({"run_id": "r1"}))
    good = StepLog("a", "task", "a", status=Status.SUCCESS)
    from runnable_trio._jsoncodec import dumps
    from runnable_trio._runlog import run_log_to_dict, step_log_to_dict

    (tmp_path / "r1.json").write_text(dumps(run_log_to_dict(run_log)))
    line = dumps({"step": step_log_to_dict(good)})
    (tmp_path / "r1.journal.jsonl").write_text(line + "\n" + line[: len(line) // 2])
    loaded = store.load("r1")
    assert loaded.steps["a"].status is Status.SUCCESS


def test_runs_reads_only_the_summary_at_the_head_of_each_snapshot(tmp_path: Path) -> None:
    from runnable_trio._filestore import _encode

    run_log = RunLog("big", tag="t", parameters_in={"blob": "x" * 100_000})
    data = _encode(run_log, None)
    (tmp_path / "big.json").write_bytes(data[:5000])  # the record after the head is cut off
    (summary,) = FileRunLogStore(tmp_path).runs()
    assert (summary.run_id, summary.tag, summary.status) == ("big", "t", Status.PROCESSING)
    assert summary.alive is False  # no writer named


# --- run ids -------------------------------------------------------------------------------


async def test_an_existing_run_id_is_rejected_before_anything_runs() -> None:
    calls: list[str] = []

    async def count() -> None:
        calls.append("ran")

    pipeline = AsyncPythonTask("a", count).as_async_pipeline()
    await collect(pipeline, run_id="same")
    with pytest.raises(RunConfigurationError, match="a run with id 'same' already exists"):
        pipeline.execute_streaming(run_id="same")
    assert calls == ["ran"]


async def test_creating_a_record_claims_its_id_atomically() -> None:
    # Two runs that both passed the early check: only one may create the record.
    stores = [FileRunLogStore(), FileRunLogStore()]
    results: list[str] = []

    async def create(store: FileRunLogStore) -> None:
        try:
            await store.create(RunLog("race"))
            results.append("created")
        except RunConfigurationError:
            results.append("refused")

    async with trio.open_nursery() as nursery:
        for store in stores:
            nursery.start_soon(create, store)
    assert sorted(results) == ["created", "refused"]


async def test_generated_ids_are_unique_and_valid() -> None:
    pipeline = AsyncPythonTask("a", ok).as_async_pipeline()
    ids = {pipeline.execute_streaming().run_id for _ in range(200)}
    assert len(ids) == 200


@pytest.mark.parametrize("bad", ["../x", "a/b", "a..b", ".hidden", "x" * 129, "a b"])
def test_invalid_run_ids_are_rejected(bad: str) -> None:
    pipeline = AsyncPythonTask("a", ok).as_async_pipeline()
    with pytest.raises(RunConfigurationError, match="run_id must be"):
        pipeline.execute_streaming(run_id=bad)


def test_the_references_iso_timestamp_ids_are_accepted() -> None:
    pipeline = AsyncPythonTask("a", ok).as_async_pipeline()
    assert pipeline.execute_streaming(run_id="req-2024-05-01T12:00:00.123456").run_id


# --- every way of ending leaves a final status ----------------------------------------------


async def test_success_failure_and_framework_errors_are_final_in_the_file() -> None:
    await collect(AsyncPythonTask("a", ok).as_async_pipeline(), run_id="good")
    with pytest.raises(ExecutionFailedError):
        await collect(AsyncPythonTask("a", boom).as_async_pipeline(), run_id="bad")

    async def needs(missing: int) -> None: ...

    with pytest.raises(ExecutionFailedError):  # a framework error: no parameter to bind
        await collect(AsyncPythonTask("a", needs).as_async_pipeline(), run_id="framework")
    assert snapshot("good")["status"] == "SUCCESS"
    bad = snapshot("bad")
    assert (bad["status"], bad["error_type"], bad["error_message"]) == (
        "FAIL",
        "ValueError",
        "boom",
    )
    assert bad["steps"]["a"]["attempts"][0]["error_message"] == "boom"
    framework = snapshot("framework")
    assert (framework["status"], framework["error_type"]) == ("FAIL", "ParameterError")


async def test_cancellation_is_final_in_the_file(autojump_clock: trio.testing.MockClock) -> None:
    async def endless() -> None:
        await trio.sleep_forever()

    with trio.move_on_after(1):
        await collect(AsyncPythonTask("a", endless).as_async_pipeline(), run_id="cut")
    data = snapshot("cut")
    assert data["status"] == "CANCELLED"
    assert data["steps"]["a"]["status"] == "CANCELLED"
    assert data["ended_at"] is not None


async def test_keyboard_interrupt_is_final_in_the_file() -> None:
    async def interrupt() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        await collect(AsyncPythonTask("a", interrupt).as_async_pipeline(), run_id="ki")
    assert snapshot("ki")["status"] == "CANCELLED"


# --- SIGKILL ---------------------------------------------------------------------------------

_VICTIM = textwrap.dedent(
    """
    import sys, trio
    from runnable_trio import AsyncPipeline, AsyncPythonTask

    stop_at = int(sys.argv[2])

    async def step(i: int) -> int:
        if i == stop_at:
            # Freeze here: every step before this one has ended, so it is in the journal.
            print("frozen", flush=True)
            sys.stdin.readline()  # blocks the whole process until the parent kills it
        await trio.sleep(0)
        return i + 1

    steps = [AsyncPythonTask(f"s{n}", step, returns=["i"]) for n in range(3000)]

    async def main() -> None:
        async for _ in AsyncPipeline(steps).execute_streaming(
            run_id=sys.argv[1], parameters={"i": 0}
        ):
            pass

    trio.run(main)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("stop_at", [0, 5, 1500])
def test_a_run_killed_by_sigkill_leaves_a_parseable_run_log(tmp_path: Path, stop_at: int) -> None:
    # Deterministic: the victim waits on a pipe at a known step, not on the clock.
    script = tmp_path / "victim.py"
    script.write_text(_VICTIM)
    victim = subprocess.Popen(
        [sys.executable, str(script), "killed", str(stop_at)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=tmp_path,
    )  # fmt: skip
    assert victim.stdout is not None
    assert victim.stdin is not None
    with victim.stdout, victim.stdin:
        assert victim.stdout.readline() == b"frozen\n"
        store = FileRunLogStore(tmp_path / ".run_log_store")
        assert store.alive("killed") is True  # frozen, but its process holds the run
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
    run_log = store.load("killed")
    assert run_log.status is Status.PROCESSING  # it never ended: nothing could say otherwise
    assert store.alive("killed") is False  # ... but its process is gone, at once
    (summary,) = store.runs()
    assert (summary.status, summary.alive) == (Status.PROCESSING, False)
    finished = [s for s in run_log.steps.values() if s.status is Status.SUCCESS]
    # Exactly the steps before the frozen one, in order, each with the value it returned.
    assert [s.name for s in finished] == [f"s{n}" for n in range(stop_at)]
    if finished:
        assert finished[-1].assigned == {"i": stop_at}


# --- memory store and reader ---------------------------------------------------------------


async def test_the_memory_store_writes_no_file(tmp_path: Path) -> None:
    (tmp_path / "memory.yaml").write_text("run_log_store:\n  type: memory\n")
    await collect(AsyncPythonTask("a", ok).as_async_pipeline(), configuration_file="memory.yaml")
    assert files_in(STORE) == []


async def test_memory_store_lists_runs_newest_first() -> None:
    store = MemoryRunLogStore()
    for run_id in ("one", "two"):
        await store.create(RunLog(run_id))
    assert [r.run_id for r in store.runs()] == ["two", "one"]


async def test_reader_loads_by_id_and_lists_newest_first() -> None:
    pipeline = AsyncPythonTask("a", ok).as_async_pipeline()
    for run_id in ("first", "second"):
        await collect(pipeline, run_id=run_id)
    with pytest.raises(ExecutionFailedError):
        await collect(AsyncPythonTask("a", boom).as_async_pipeline(), run_id="third")
    assert read_run_log("second").status is Status.SUCCESS
    runs = list_runs()
    assert [(r.run_id, r.status) for r in runs] == [
        ("third", Status.FAIL),
        ("second", Status.SUCCESS),
        ("first", Status.SUCCESS),
    ]
    assert all(r.ended_at is not None and r.started_at <= r.ended_at for r in runs)
    with pytest.raises(RunConfigurationError, match="no run with id 'nope'"):
        read_run_log("nope")


@pytest.fixture
def process_memory(monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh process memory store for the test, and a configuration naming it."""
    import runnable_trio._stores

    monkeypatch.setattr(runnable_trio._stores, "_memory_store", None)
    path = Path("memory.yaml")
    path.write_text("run_log_store:\n  type: memory\n")
    return path


async def test_type_memory_names_one_store_that_readers_and_retries_use(
    process_memory: Path,
) -> None:
    config = str(process_memory)
    failing = {"yes"}

    async def flaky() -> str:
        if failing:
            raise ValueError("not yet")
        return "done"

    pipeline = AsyncPythonTask("a", flaky, returns=["x"]).as_async_pipeline()
    with pytest.raises(ExecutionFailedError):
        await collect(pipeline, run_id="mem1", configuration_file=config)
    assert read_run_log("mem1", configuration_file=config).status is Status.FAIL
    assert [(r.run_id, r.status, r.alive) for r in list_runs(configuration_file=config)] == [
        ("mem1", Status.FAIL, False)
    ]
    with pytest.raises(RunConfigurationError, match="'mem1' already exists"):
        pipeline.execute_streaming(config, run_id="mem1")
    failing.clear()
    from runnable_trio import retry_stream

    async with retry_stream(pipeline, "mem1", configuration_file=config) as events:
        async for _ in events:
            pass
    assert read_run_log("mem1", configuration_file=config).parameters_out == {"x": "done"}
    assert files_in(STORE) == []
    with pytest.raises(RunConfigurationError, match="no run with id 'mem1'"):
        read_run_log("mem1")  # the default configuration names the file store


@pytest.mark.parametrize("surface", ["execute_streaming", "stream"])
async def test_store_keyword_records_the_run_in_the_given_store(surface: str) -> None:
    store = MemoryRunLogStore()
    pipeline = AsyncPythonTask("a", ok, returns=["x"]).as_async_pipeline()
    if surface == "stream":
        await collect(pipeline, run_id="given", store=store)
    else:
        async for _ in pipeline.execute_streaming(run_id="given", store=store):
            pass
    assert store.load("given").status is Status.SUCCESS
    assert files_in(STORE) == []
    with pytest.raises(RunConfigurationError, match="'given' already exists"):
        pipeline.execute_streaming(run_id="given", store=store)


@pytest.mark.parametrize("kind", ["file", "memory"])
async def test_run_summary_alive_while_the_writer_holds_the_run(kind: str) -> None:
    store: Any = FileRunLogStore() if kind == "file" else MemoryRunLogStore()
    release = trio.Event()
    seen: list[Any] = []

    async def wait() -> None:
        seen.extend(store.runs())
        seen.append(store.alive("live"))
        await release.wait()

    pipeline = AsyncPythonTask("a", wait).as_async_pipeline()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(functools.partial(collect, pipeline, run_id="live", store=store))
        await trio.testing.wait_all_tasks_blocked()
        release.set()
    summary, alive = seen
    assert (summary.run_id, summary.status, summary.alive, alive) == (
        "live", Status.PROCESSING, True, True,
    )  # fmt: skip
    assert isinstance(summary.started_at, dt.datetime)
    assert summary.ended_at is None
    (final,) = store.runs()
    assert (final.status, final.alive, store.alive("live")) == (Status.SUCCESS, False, False)
    assert isinstance(final.ended_at, dt.datetime)
    assert final.started_at <= final.ended_at


class _ThirdStore:
    """A store that is neither of the library's: only the protocol, wrapping a memory store."""

    def __init__(self) -> None:
        self.inner = MemoryRunLogStore()
        self.calls: list[str] = []

    def exists(self, run_id: str) -> bool:
        return self.inner.exists(run_id)

    async def create(self, run_log: RunLog) -> None:
        self.calls.append("create")
        await self.inner.create(run_log)

    async def reopen(self, run_log: RunLog) -> None:
        self.calls.append("reopen")
        await self.inner.reopen(run_log)

    async def step_finished(self, run_log: RunLog, step: StepLog) -> None:
        self.calls.append(f"step {step.path}")

    async def finish(self, run_log: RunLog) -> None:
        self.calls.append(f"finish {run_log.status}")
        await self.inner.finish(run_log)

    def load(self, run_id: str) -> RunLog:
        return self.inner.load(run_id)

    def runs(self) -> list[RunSummary]:
        return self.inner.runs()

    def alive(self, run_id: str) -> bool | None:
        return None  # cannot tell


async def test_a_third_store_plugs_in_through_the_protocol_alone() -> None:
    from runnable_trio import retry_stream

    store = _ThirdStore()
    checked: RunLogStore = store  # mypy checks the protocol here
    pipeline = AsyncPythonTask("a", boom).as_async_pipeline()
    with pytest.raises(ExecutionFailedError):
        await collect(pipeline, run_id="third", store=checked)
    assert store.calls == ["create", "step a", "finish FAIL"]
    async with retry_stream(pipeline, "third", store=checked):
        pass  # left at once: CANCELLED
    # A PROCESSING record whose store cannot tell liveness is never taken over.
    store.inner.load("third").status = Status.PROCESSING
    with pytest.raises(RunConfigurationError, match="still going"):
        retry_stream(pipeline, "third", store=checked)


# --- code identity -------------------------------------------------------------------------


def make_checkout(folder: Path) -> str:
    """A git checkout with one commit of ``tracked.txt``; returns the commit."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=folder, check=True, capture_output=True)
        return done.stdout.decode().strip()

    git("init", "-q")
    (folder / "tracked.txt").write_text("v1")
    git("add", "tracked.txt")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "c")
    return git("rev-parse", "HEAD")


async def test_code_identity_is_taken_once_per_process_and_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runnable_trio import _codeid

    probes: list[str] = []

    def counting_probe(folder: str) -> Any:
        probes.append(folder)
        return probe(folder)

    probe = _codeid.probe_code_identity
    monkeypatch.setattr(_codeid, "probe_code_identity", counting_probe)
    commit = make_checkout(tmp_path)
    pipeline = AsyncPythonTask("a", ok).as_async_pipeline()
    await collect(pipeline, run_id="first")
    # The process keeps running the code it imported, whatever the tree does afterwards.
    (tmp_path / "tracked.txt").write_text("v2")
    await collect(pipeline, run_id="second")
    assert snapshot("first")["code"] == {"commit": commit, "dirty": False, "error": None}
    assert snapshot("second")["code"] == snapshot("first")["code"]
    assert probes == [str(tmp_path)]
    assert probe(str(tmp_path)).dirty  # a new process would see the change


async def test_code_identity_outside_a_checkout_is_an_error_not_a_failure() -> None:
    await collect(AsyncPythonTask("a", ok).as_async_pipeline(), run_id="r")
    code = snapshot("r")["code"]
    assert code["commit"] is None
    assert "not a git repository" in code["error"]


async def test_journal_writes_each_enclosing_record_once(tmp_path: Path) -> None:
    async def item(x: int) -> int:
        return x

    branch = AsyncPythonTask("t", item, returns=["y"]).as_async_pipeline()
    pipeline = AsyncPipeline([Map("m", "xs", "x", branch)])
    store = FileRunLogStore(tmp_path)
    journal_lines: list[dict[str, Any]] = []
    original = store.finish

    async def finish_reading_journal(run_log: RunLog) -> None:
        text = store.journal_path(run_log.run_id).read_text()
        journal_lines.extend(json.loads(line) for line in text.splitlines())
        reread = store.load(run_log.run_id)  # what a reader sees before the final snapshot
        assert reread.steps["m"].kind == "map"
        assert [b.steps["t"].assigned for b in reread.steps["m"].branches.values()] == [
            {"y": 0},
            {"y": 1},
            {"y": 2},
        ]
        await original(run_log)

    store.finish = finish_reading_journal  # type: ignore[method-assign]
    from runnable_trio.hosting import RunOptions, prepare_run, start_streaming

    run = start_streaming(
        prepare_run(
            pipeline,
            RunOptions.check(
                configuration_file="",
                run_id="r",
                tag="",
                parameters_file="",
                log_level="WARNING",
                parameters={"xs": [0, 1, 2]},
                attribution=False,
                buffer_size=None,
                store=store,
            ),
        )
    )
    async for _ in run:
        pass
    assert [next(iter(line)) for line in journal_lines] == [
        "_summary",  # the record as the run started
        "parent",
        "step",
        "step",
        "step",
        "step",
    ]


async def test_a_cancelled_run_does_not_wait_for_git(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from runnable_trio import _codeid

    release = threading.Event()

    def slow_git(folder: str) -> Any:
        release.wait(10)  # git on a huge checkout
        return _codeid.CodeIdentity(commit="abc", dirty=False)

    monkeypatch.setattr(_codeid, "probe_code_identity", slow_git)
    started = trio.Event()

    async def endless() -> Any:
        started.set()
        yield {"type": "x"}
        await trio.sleep_forever()

    try:
        with trio.fail_after(5):
            async with AsyncPythonTask("e", endless).as_async_pipeline().stream() as events:
                async for _ in events:
                    break
    finally:
        release.set()
    assert events.run_log.status is Status.CANCELLED
    assert events.run_log.code is not None
    assert "not taken" in (events.run_log.code.error or "")


def test_a_journal_torn_anywhere_in_its_last_line_keeps_every_line_before(
    tmp_path: Path,
) -> None:
    from runnable_trio._filestore import _encode
    from runnable_trio._steplines import step_line

    store = FileRunLogStore(tmp_path)
    (tmp_path / "r.json").write_bytes(_encode(RunLog("r"), None))
    before = [StepLog(f"s{i}", "task", f"s{i}", status=Status.SUCCESS) for i in range(3)]
    last = StepLog("last", "task", "last", status=Status.FAIL)
    last.new_attempt().parameters_in["v"] = {"é": [1, 2.5, None], "n": "x" * 50}
    head = "".join(step_line(step) + "\n" for step in before).encode()
    tail = (step_line(last) + "\n").encode()
    for cut in range(len(tail)):  # a process killed after writing `cut` bytes of the line
        (tmp_path / "r.journal.jsonl").write_bytes(head + tail[:cut])
        loaded = store.load("r")
        whole = cut == len(tail) - 1  # all but the newline: the line is whole
        assert list(loaded.steps) == ["s0", "s1", "s2"] + (["last"] if whole else []), cut
        assert all(loaded.steps[s.name] == s for s in before)


def test_runs_decodes_no_whole_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from runnable_trio import _filestore
    from runnable_trio._filestore import _encode

    for i in range(50):
        run_log = RunLog(f"r{i}", tag="t", parameters_in={"blob": "x" * 10_000})
        run_log.steps["a"] = StepLog("a", "task", "a", status=Status.SUCCESS)
        if i % 2:
            run_log.end(Status.SUCCESS)
        (tmp_path / f"r{i}.json").write_bytes(_encode(run_log, None))
    calls: list[object] = []
    for name in ("loads", "read_file", "read_run", "place_journal"):
        original = getattr(_filestore, name)

        def counted(*args: Any, _original: Any = original) -> Any:
            calls.append(args)
            return _original(*args)

        monkeypatch.setattr(_filestore, name, counted)
    runs = FileRunLogStore(tmp_path).runs()
    assert sorted(run.run_id for run in runs) == sorted(f"r{i}" for i in range(50))
    assert calls == []
    store = FileRunLogStore(tmp_path)
    assert store.load("r1").status is Status.SUCCESS
    assert calls  # the counting is live: loading a record does decode it


@pytest.mark.parametrize("tag_length", [0, 4000, 5000, 100_000])
def test_a_long_summary_is_read_only_as_far_as_it_goes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tag_length: int
) -> None:
    from runnable_trio import _filestore
    from runnable_trio._filestore import _encode

    run_log = RunLog("long", tag="é" * tag_length, parameters_in={"blob": "x" * 2_000_000})
    data = _encode(run_log, None)
    (tmp_path / "long.json").write_bytes(data)
    summary_length = data.index(b',"run_id"')  # the summary ends where the record begins
    read: list[int] = []
    original = _filestore.read_head

    def counted(path: Path, size: int) -> bytes:
        head = original(path, size)
        read.append(len(head))
        return head

    monkeypatch.setattr(_filestore, "read_head", counted)
    monkeypatch.setattr(_filestore, "read_file", None)  # the whole file is never read
    (summary,) = FileRunLogStore(tmp_path).runs()
    assert summary.tag == run_log.tag
    assert sum(read) <= max(4096, 4 * summary_length) * 4 // 3 + 4096


def test_a_summary_that_never_ends_is_no_run(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_bytes(b'{"_summary":{"run_id":"' + b"x" * 50_000)
    (tmp_path / "empty.json").write_bytes(b"")
    (tmp_path / "head.json").write_bytes(b'{"_summary":')
    assert FileRunLogStore(tmp_path).runs() == []


@pytest.mark.parametrize("enabled", [True, False])
def test_loading_leaves_the_garbage_collector_as_it_was(tmp_path: Path, enabled: bool) -> None:
    import gc

    from runnable_trio._filestore import _encode

    store = FileRunLogStore(tmp_path)
    (tmp_path / "r.json").write_bytes(_encode(RunLog("r"), None))
    (tmp_path / "r.journal.jsonl").write_text('{"step": 5}\n')  # not a step: ignored
    (tmp_path / "bad.json").write_text('{"run_id": "bad", "status": "DONE"}')
    seen: list[bool] = []
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        loaded = store.load("r")
        seen.append(gc.isenabled())
        with pytest.raises(RunConfigurationError, match="is not a run log"):
            store.load("bad")
        seen.append(gc.isenabled())
    finally:
        (gc.enable if was else gc.disable)()
    assert loaded.run_id == "r"
    assert seen == [enabled, enabled]


class _CountingStore(MemoryRunLogStore):
    """The memory store, counting the ``step_finished`` calls it gets."""

    def __init__(self) -> None:
        super().__init__()
        self.reported: list[str] = []

    async def step_finished(self, run_log: Any, step: Any) -> None:
        self.reported.append(step.path)


class _QuietStore(_CountingStore):
    """A store that says it does not want finished steps."""

    wants_step_finished = False


async def _add(x: int) -> int:
    return x + 1


async def _item_seen(item: int) -> None:
    pass


def _steps_and_a_map() -> AsyncPipeline:
    each = AsyncPythonTask("seen", _item_seen).as_async_pipeline()
    return AsyncPipeline(
        [
            *(AsyncPythonTask(f"s{i}", _add, returns=["x"]) for i in range(3)),
            Map("each", iterate_on="items", iterate_as="item", branch=each),
        ]
    )


def test_the_memory_store_wants_finished_steps_only_where_a_subclass_handles_them() -> None:
    # Its own step_finished does nothing: no coroutine made and awaited per step for it.
    assert MemoryRunLogStore().wants_step_finished is False
    assert _CountingStore().wants_step_finished is True


async def test_a_store_that_does_not_want_finished_steps_is_not_told_of_them() -> None:
    store = _QuietStore()
    async for _ in _steps_and_a_map().execute_streaming(
        parameters={"x": 0, "items": [1, 2]}, store=store
    ):
        pass
    assert store.reported == []
    assert store.load(store.runs()[0].run_id).parameters_out["x"] == 3


async def test_a_store_that_wants_finished_steps_is_told_of_each() -> None:
    store = _CountingStore()
    async for _ in _steps_and_a_map().execute_streaming(
        parameters={"x": 0, "items": [1, 2]}, store=store
    ):
        pass
    assert sorted(store.reported) == ["each", "each.0.seen", "each.1.seen", "s0", "s1", "s2"]
