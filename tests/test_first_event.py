"""The path from the call to a run's first event: what it must not do again at every run."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio.testing

from runnable_trio import (
    AsyncPipeline,
    AsyncPythonTask,
    ExecutionFailedError,
    MemoryRunLogStore,
    _codeid,
    _convert,
)
from runnable_trio._convert import read_regular_file
from runnable_trio._runlog import CodeIdentity, RunLog, Status


def test_a_file_is_read_with_text_mode_line_ends(tmp_path: Path) -> None:
    file = tmp_path / "f.yaml"
    file.write_bytes("a: 1\r\nb: é\rc: 3\n".encode())
    assert read_regular_file(file, "parameters_file") == "a: 1\nb: é\nc: 3\n"


def test_a_file_larger_than_one_read_is_read_whole(tmp_path: Path) -> None:
    file = tmp_path / "big.yaml"
    text = "".join(f"k{i}: {i}\n" for i in range(3 * _convert._CHUNK // 8))
    file.write_text(text, encoding="utf-8")
    assert len(text) > 2 * _convert._CHUNK
    assert read_regular_file(file, "configuration_file") == text


def test_a_file_that_is_not_utf8_is_a_configuration_error(tmp_path: Path) -> None:
    from runnable_trio import RunConfigurationError

    file = tmp_path / "latin1.yaml"
    file.write_bytes(b"a: caf\xe9\n")
    with pytest.raises(RunConfigurationError, match=r"cannot read parameters_file .*utf-8"):
        read_regular_file(file, "parameters_file")


async def test_a_known_code_identity_is_recorded_without_a_checkpoint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    known = CodeIdentity(commit="abc", dirty=False)
    monkeypatch.setitem(_codeid._taken, os.getcwd(), known)
    run_log = RunLog("r")
    # The end of a run that streamed its last event must not wait a scheduling round.
    with trio.testing.assert_no_checkpoints():
        async with _codeid.recording_code_identity(run_log, True):
            pass
    assert run_log.code is known


async def test_a_known_code_identity_makes_no_event_to_wait_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    known = CodeIdentity(commit="abc", dirty=False)
    monkeypatch.setitem(_codeid._taken, os.getcwd(), known)

    def no_event() -> None:
        raise AssertionError("an answered probe made an event")

    with monkeypatch.context() as patched:
        patched.setattr(_codeid.trio, "Event", no_event)
        recording = _codeid.recording_code_identity(RunLog("r"), True)
        interrupted = _codeid.recording_code_identity(RunLog("i"), True)
    async with recording:
        pass
    assert recording._run_log.code is known
    with pytest.raises(KeyboardInterrupt):  # a run that did not end by itself records it too
        async with interrupted:
            raise KeyboardInterrupt
    assert interrupted._run_log.code is known


async def test_an_exception_leaves_the_block_as_raised_with_the_identity_recorded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    known = CodeIdentity(commit="abc", dirty=True)
    monkeypatch.setitem(_codeid._taken, os.getcwd(), known)
    run_log = RunLog("r")
    error = ValueError("boom")
    with pytest.raises(ValueError, match="boom") as raised:
        async with _codeid.recording_code_identity(run_log, True):
            raise error
    assert raised.value is error
    assert run_log.code is known
    disabled = RunLog("d")
    async with _codeid.recording_code_identity(disabled, False):
        pass
    assert disabled.code is None


async def test_a_first_run_has_its_first_event_before_git_starts(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Under an autojump clock the probe runs at once where it starts: the order is exact.
    order: list[str] = []

    def probe(folder: str) -> CodeIdentity:
        order.append("git")
        return CodeIdentity(commit="abc", dirty=False)

    monkeypatch.setattr(_codeid, "probe_code_identity", probe)
    monkeypatch.setattr(_codeid, "_taken", {})  # the process's first run

    async def two() -> AsyncIterator[dict[str, Any]]:
        yield {"type": "first"}
        await trio.sleep(1)
        yield {"type": "second"}

    pipeline = AsyncPythonTask("t", two).as_async_pipeline()
    async with pipeline.stream(store=MemoryRunLogStore()) as events:
        async for event in events:
            order.append(event["type"])
    assert order == ["first", "git", "second"]  # started once the consumer waited again
    assert events.run_log.code == CodeIdentity(commit="abc", dirty=False)

    # A run whose consumer never waits after its first event starts it at the end.
    order.clear()
    monkeypatch.setattr(_codeid, "_taken", {})
    async for event in (
        AsyncPythonTask("t", _one).as_async_pipeline().execute_streaming(store=MemoryRunLogStore())
    ):
        order.append(event["type"])
    assert order == ["one", "git"]


async def _one() -> AsyncIterator[dict[str, Any]]:
    yield {"type": "one"}


async def test_the_consumer_takes_the_last_events_before_the_run_ends() -> None:
    received: list[str] = []
    at_finish: list[list[str]] = []

    class Store(MemoryRunLogStore):
        async def finish(self, run_log: RunLog) -> None:
            at_finish.append(list(received))  # a file store starts its thread here
            await super().finish(run_log)

    async def last() -> AsyncIterator[dict[str, Any]]:
        yield {"type": "last"}

    async def fails() -> AsyncIterator[dict[str, Any]]:
        yield {"type": "last"}
        raise ValueError("after its last event")

    store = Store()
    for function in [last, fails] * 10:  # Trio runs a batch's tasks in a random order
        received.clear()
        pipeline = AsyncPythonTask("t", function).as_async_pipeline()
        with contextlib.suppress(ExecutionFailedError):
            async for event in pipeline.execute_streaming(store=store):
                received.append(event["type"])
    assert at_finish == [["last"]] * 20


def test_a_new_run_id_starts_with_the_utc_time_to_the_microsecond() -> None:
    from runnable_trio._runid import new_run_id, validate_run_id

    before = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    run_id = new_run_id()
    after = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    stamp, random_and_count = run_id[:22], run_id[23:]
    assert before <= dt.datetime.strptime(stamp, "%Y%m%d-%H%M%S-%f") <= after
    assert re.fullmatch("[0-9a-f]{7,}", random_and_count)
    assert validate_run_id(run_id) == run_id
    assert new_run_id() != run_id


def test_a_new_run_id_has_the_second_it_was_made_in(monkeypatch: pytest.MonkeyPatch) -> None:
    from runnable_trio import _runid

    def stamp(ns: int) -> str:
        made = dt.datetime.fromtimestamp(ns // 10**9, dt.UTC)
        return made.replace(microsecond=ns // 1000 % 10**6).strftime("%Y%m%d-%H%M%S-%f")

    instants = [1_700_000_000_999_999_000, 1_700_000_001_000_000_000, 1_700_000_001_000_001_000]
    times = iter(instants)
    monkeypatch.setattr(_runid.time, "time_ns", lambda: next(times))
    made = [_runid.new_run_id()[:22] for _ in instants]
    assert made == [stamp(ns) for ns in instants]
    assert made[0][:15] != made[1][:15]  # the second formatted once moved on


@pytest.mark.parametrize("surface", ["execute_streaming", "stream"])
async def test_a_generator_s_first_event_is_taken_before_its_step_is_recorded(
    surface: str,
) -> None:
    # A generator that never waits hands its events over without a checkpoint: its consumer
    # has them before the step's end is recorded (a journal line, for the file store).
    received: list[str] = []
    at_step: list[list[str]] = []

    class Store(MemoryRunLogStore):
        async def step_finished(self, run_log: RunLog, step: Any) -> None:
            at_step.append(list(received))
            await super().step_finished(run_log, step)

    async def second() -> AsyncIterator[dict[str, Any]]:
        yield {"type": "two"}

    store = Store()
    pipeline = AsyncPipeline([AsyncPythonTask("one", _one), AsyncPythonTask("two", second)])
    for _ in range(10):  # Trio runs a batch's tasks in a random order
        received.clear()
        if surface == "stream":
            async with pipeline.stream(store=store) as events:
                async for event in events:
                    received.append(event["type"])
        else:
            async for event in pipeline.execute_streaming(store=store):
                received.append(event["type"])
        assert received == ["one", "two"]
    # The first step's record after its event was taken; a later step's as before (once
    # per run: a scheduling round per step would cost long runs).
    assert at_step == [["one"], ["one"]] * 10


async def test_a_generated_run_id_is_not_looked_up_a_given_one_is(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from runnable_trio._catalog import RunCatalog

    asked: list[str] = []
    checked = RunCatalog.check_new

    def check_new(catalog: RunCatalog) -> None:
        asked.append(f"catalog {catalog.root.name}")
        checked(catalog)

    monkeypatch.setattr(RunCatalog, "check_new", check_new)

    class Store(MemoryRunLogStore):
        def exists(self, run_id: str) -> bool:
            asked.append(run_id)
            return super().exists(run_id)

    store = Store()
    pipeline = AsyncPythonTask("t", _one).as_async_pipeline()
    # Unique per run: no store can hold it (a file store would look two names up for it),
    # and nothing can be at its catalog folder.
    async with pipeline.stream(store=store) as events:
        async for _ in events:
            pass
    assert asked == []
    async for _ in pipeline.execute_streaming(store=store, run_id="given"):
        pass
    assert asked == ["given", "catalog given"]
    # A given id is still refused at the call when a run has it.
    from runnable_trio import RunConfigurationError

    with pytest.raises(RunConfigurationError, match="'given' already exists"):
        pipeline.execute_streaming(store=store, run_id="given")
    assert store.load(events.run_id).run_id == events.run_id  # the generated id's record


def test_the_default_configuration_is_made_once() -> None:
    from runnable_trio._config import load_configuration

    assert load_configuration("") is load_configuration("")  # immutable: shared by every run


def test_the_default_run_options_are_made_once_and_any_other_is_still_checked() -> None:
    from runnable_trio import RunConfigurationError
    from runnable_trio._options import RunOptions

    default = RunOptions.check()
    assert RunOptions.check(run_id=None, log_level=30) is default  # stream()'s defaults too
    assert default == RunOptions()
    assert RunOptions.check(tag="t") == RunOptions(tag="t")
    assert RunOptions.check(log_level="ERROR").log_level == 40
    with pytest.raises(RunConfigurationError, match="log_level"):
        RunOptions.check(log_level="loud")
    with pytest.raises(RunConfigurationError, match="tag must be a str"):
        RunOptions.check(tag=b"")  # falsy, yet not the default
    with pytest.raises(RunConfigurationError, match="run_id must be a str"):
        RunOptions.check(run_id=0)  # type: ignore[arg-type]


def test_a_run_s_catalog_folder_is_joined_only_when_used(monkeypatch: pytest.MonkeyPatch) -> None:
    from pathlib import PurePath

    from runnable_trio._catalog import RunCatalog

    RunCatalog.for_run("warm")  # the folders, resolved once per working folder
    expected = Path(".catalog").resolve() / "r-1"
    joins: list[object] = []
    joined = PurePath.__truediv__

    def counted(self: PurePath, key: str) -> PurePath:
        joins.append(key)
        return joined(self, key)

    monkeypatch.setattr(PurePath, "__truediv__", counted)
    catalog = RunCatalog.for_run("r-1")
    assert joins == []  # not on the way to the first event
    assert catalog.root == expected
    assert catalog.root is catalog.root
    assert joins == ["r-1"]  # once, when first used


def test_a_working_folder_s_first_run_looks_only_at_its_own_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runnable_trio import _catalog
    from runnable_trio._catalog import RunCatalog

    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "logs").mkdir()
    (tmp_path / "real" / "cat").symlink_to("logs")  # followed, relative to its folder
    (tmp_path / "link").symlink_to(tmp_path / "real")
    monkeypatch.chdir(tmp_path / "link")  # os.getcwd() gives the folder linked to
    monkeypatch.setattr(_catalog, "_roots", {})  # the process's first run there
    looked: list[str] = []
    lstat = os.lstat

    def counted(path: Any, **kwargs: Any) -> os.stat_result:
        looked.append(os.fspath(path))
        return lstat(path, **kwargs)

    monkeypatch.setattr(os, "lstat", counted)
    here = RunCatalog.for_run("r-1", "cat", "logs")
    # The link (seen to be one, then resolved), its target, the plain folder: none above them.
    assert looked == ["cat", "cat", "logs", "logs"]
    assert here.excluded == (tmp_path / "real" / "logs", tmp_path / "real" / "logs")
    assert here.workdir == tmp_path / "real"
    looked.clear()
    # A working folder that is not the process's is resolved from the root, as it is.
    other = RunCatalog.for_run("r-2", "cat", "logs", workdir=str(tmp_path / "link"))
    assert str(tmp_path / "link") in looked
    assert other.excluded == here.excluded
    assert other.workdir == tmp_path / "link"


async def test_branches_ending_at_once_fail_fast_as_before() -> None:
    # The hand-over is for a step that runs alone: in a Parallel, the first branch to fail
    # cancels its sibling before that one can fail too (one error, not a group of two).
    from runnable_trio import Parallel, ReturnsError

    async def no_end() -> AsyncIterator[dict[str, Any]]:
        yield {"type": "token"}

    branches = {
        name: AsyncPythonTask("llm", no_end, returns=["text"]).as_async_pipeline()
        for name in ("a", "b")
    }
    pipeline = AsyncPipeline([Parallel("both", branches)])
    for _ in range(10):  # Trio runs a batch's tasks in a random order
        with pytest.raises(ExecutionFailedError) as failed:
            async for _ in pipeline.execute_streaming(store=MemoryRunLogStore()):
                pass
        assert isinstance(failed.value.__cause__, ReturnsError)


async def test_a_later_run_s_start_asks_nothing_the_process_knows_already(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Known after the first run of the process: the working folder's code identity (no probe
    # made), the reserve descriptor (held: its lock not taken), what the default log level
    # and configuration are (no logging look-up, no path check), the file store (the one
    # made for this folder). The working folder is read once.
    import logging

    from runnable_trio import _config, _files, _stores

    monkeypatch.setitem(_codeid._taken, os.getcwd(), CodeIdentity(commit="abc", dirty=False))
    pipeline = AsyncPythonTask("t", _one).as_async_pipeline()
    async for _ in pipeline.execute_streaming():
        pass

    def asked(*args: object) -> None:
        raise AssertionError("asked again at a later run's start")

    class NoLock:
        __enter__ = __exit__ = asked

    folders_read: list[str] = []
    real_getcwd = os.getcwd

    def getcwd() -> str:
        folders_read.append(real_getcwd())
        return folders_read[-1]

    with monkeypatch.context() as patched:
        patched.setattr(_codeid._Probe, "__init__", asked)
        patched.setattr(_files, "_spare_guard", NoLock())
        patched.setattr(logging, "getLevelName", asked)
        patched.setattr(_config, "check_path", asked)
        patched.setattr(_stores, "FileRunLogStore", asked)
        patched.setattr(os, "getcwd", getcwd)
        run = pipeline.execute_streaming()
        async for event in run:
            assert event == {"type": "one"}
    assert folders_read == [os.getcwd()]
    assert run.run_log.code == CodeIdentity(commit="abc", dirty=False)
    assert run.run_log.status is Status.SUCCESS


async def test_a_generated_id_s_run_looks_for_no_snapshot_a_given_one_does() -> None:
    # A file store's run refuses an id a run has ended under (its snapshot there): no such
    # run can exist for an id made for the run, claimed for the first time.
    from runnable_trio import RunConfigurationError, _filestore

    looked: list[str] = []
    real_present = _filestore._present

    def present(path: str | Path) -> bool:
        looked.append(os.path.basename(path))
        return real_present(path)

    pipeline = AsyncPythonTask("t", _one).as_async_pipeline()
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(_filestore, "_present", present)
        first = pipeline.execute_streaming()
        # The same id given again before the first run has even started: not new any more
        # once that run has claimed it.
        again = pipeline.execute_streaming(run_id=first.run_id)
        looked.clear()  # the given id was looked up at the call (exists)
        async for _ in first:
            pass
        assert looked == []
        with pytest.raises(ExecutionFailedError) as failed:
            async for _ in again:
                pass
        assert isinstance(failed.value.__cause__, RunConfigurationError)
        assert "already exists" in str(failed.value.__cause__)
        assert looked == [f"{first.run_id}.json"]
        async for _ in pipeline.execute_streaming(run_id="given"):
            pass
        assert looked[-1] == "given.json"
    assert _filestore.FileRunLogStore().load(first.run_id).status is Status.SUCCESS


def test_run_options_given_only_files_or_a_tag_are_made_once_per_value() -> None:
    from runnable_trio._options import RunOptions

    options = RunOptions.check(configuration_file="c.yaml")
    assert options == RunOptions(configuration_file="c.yaml")
    assert RunOptions.check(configuration_file="c.yaml", run_id=None) is options  # stream()'s
    assert RunOptions.check(configuration_file="c.yaml", log_level="warning") is options
    tagged = RunOptions.check(configuration_file="c.yaml", tag="t", parameters_file="p.yaml")
    assert tagged == RunOptions(configuration_file="c.yaml", tag="t", parameters_file="p.yaml")
    assert tagged is not options
    assert (
        RunOptions.check(configuration_file="c.yaml", tag="t", parameters_file="p.yaml") is tagged
    )
    # Anything else is made (and checked) for its run.
    given = RunOptions.check(configuration_file="c.yaml", run_id="r")
    assert given.run_id == "r"
    assert given is not RunOptions.check(configuration_file="c.yaml", run_id="r")
    assert RunOptions.check(configuration_file="c.yaml", log_level="ERROR").log_level == 40
    parameters = {"x": 1}
    assert (
        RunOptions.check(configuration_file="c.yaml", parameters=parameters).parameters
        is parameters
    )
    assert RunOptions.check(configuration_file="c.yaml", attribution=True).attribution is True
