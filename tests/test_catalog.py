"""The catalog: get/put around tasks, hashes in the run log, escapes refused, pickled returns."""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
from pathlib import Path
from typing import Any

import pytest

from runnable_trio import (
    AsyncPipeline,
    AsyncPythonTask,
    Catalog,
    ExecutionFailedError,
    PipelineDefinitionError,
    Status,
    StepError,
    pickled,
)
from runnable_trio._runlog import RunLog

from .helpers import run

CATALOG = Path(".catalog")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def read(path: Path) -> bytes:
    return path.read_bytes()


async def run_failing(pipeline: AsyncPipeline, run_id: str) -> tuple[BaseException, RunLog]:
    async with pipeline.stream(run_id=run_id) as events:
        with pytest.raises(ExecutionFailedError) as caught:
            async for _ in events:
                pass
    assert caught.value.__cause__ is not None
    return caught.value.__cause__, events.run_log


async def test_put_then_get_moves_files_through_the_runs_catalog() -> None:
    def produce() -> None:
        write(Path("out/a.csv"), b"1,2")
        write(Path("out/b.csv"), b"3,4")

    def clean() -> None:
        os.remove("out/a.csv")

    def consume() -> bytes:
        return read(Path("out/a.csv"))  # `get` brought it back

    pipeline = AsyncPipeline(
        [
            AsyncPythonTask("produce", produce, catalog=Catalog(put=["out/*.csv"])),
            AsyncPythonTask("clean", clean),
            AsyncPythonTask(
                "consume", consume, returns=["data"], catalog=Catalog(get=["out/a.csv"])
            ),
        ]
    )
    async with pipeline.stream(run_id="r1") as events:
        async for _ in events:
            pass
    log = events.run_log
    assert log.parameters_out["data"] == b"1,2"
    assert read(CATALOG / "r1" / "out" / "b.csv") == b"3,4"
    assert [(e.name, e.sha256, e.stage) for e in log.steps["produce"].catalog] == [
        ("out/a.csv", sha(b"1,2"), "put"),
        ("out/b.csv", sha(b"3,4"), "put"),
    ]
    assert [(e.name, e.stage) for e in log.steps["consume"].catalog] == [("out/a.csv", "get")]


async def test_put_without_store_copy_only_records_the_hash() -> None:
    def produce() -> None:
        write(Path("model.bin"), b"weights")

    task = AsyncPythonTask("p", produce, catalog=Catalog(put=["model.bin"], store_copy=False))
    async with task.as_async_pipeline().stream(run_id="r1") as events:
        async for _ in events:
            pass
    (entry,) = events.run_log.steps["p"].catalog
    assert (entry.name, entry.sha256) == ("model.bin", sha(b"weights"))
    assert not (CATALOG / "r1" / "model.bin").exists()


async def test_a_put_that_matches_nothing_fails_the_step_clearly() -> None:
    async def nothing() -> None:
        pass

    task = AsyncPythonTask("p", nothing, catalog=Catalog(put=["missing/*.csv"]))
    cause, log = await run_failing(task.as_async_pipeline(), "r1")
    assert isinstance(cause, StepError)
    assert str(cause) == (
        "step 'p': catalog put 'missing/*.csv' matched no file in the working folder"
    )
    assert log.steps["p"].status is Status.FAIL


async def test_a_get_that_matches_nothing_fails_before_the_task_runs() -> None:
    calls: list[str] = []

    async def work() -> None:
        calls.append("ran")

    task = AsyncPythonTask("g", work, catalog=Catalog(get=["absent.txt"]))
    cause, _ = await run_failing(task.as_async_pipeline(), "r1")
    assert "catalog get 'absent.txt' matched no file" in str(cause)
    assert calls == []


@pytest.mark.parametrize("pattern", ["../x", "/etc/passwd", "a/../../b", "C:/x", "\\\\host\\x"])
def test_patterns_that_could_escape_are_rejected_when_built(pattern: str) -> None:
    with pytest.raises(PipelineDefinitionError, match="must be relative and stay inside"):
        Catalog(get=[pattern])
    with pytest.raises(PipelineDefinitionError, match="must be relative and stay inside"):
        Catalog(put=[pattern])


async def test_a_symlink_leading_out_of_the_working_folder_is_refused(tmp_path: Path) -> None:
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    write(outside / "secret.txt", b"secret")
    os.symlink(outside / "secret.txt", "leak.txt")

    async def nothing() -> None:
        pass

    task = AsyncPythonTask("p", nothing, catalog=Catalog(put=["*.txt"]))
    cause, _ = await run_failing(task.as_async_pipeline(), "r1")
    assert "catalog path 'leak.txt' leads outside" in str(cause)
    assert not (CATALOG / "r1").exists()


async def test_a_symlinked_folder_cannot_receive_files_from_the_catalog(tmp_path: Path) -> None:
    outside = tmp_path.parent / f"{tmp_path.name}-target"
    outside.mkdir()

    def produce() -> None:
        write(Path("data") / "x.txt", b"x")

    def plant() -> None:
        shutil.rmtree("data")
        os.symlink(outside, "data")

    async def nothing() -> None:
        pass

    pipeline = AsyncPipeline(
        [
            AsyncPythonTask("p", produce, catalog=Catalog(put=["data/x.txt"])),
            AsyncPythonTask("plant", plant),
            AsyncPythonTask("g", nothing, catalog=Catalog(get=["data/x.txt"])),
        ]
    )
    cause, _ = await run_failing(pipeline, "r1")
    assert "catalog path 'data/x.txt' leads outside" in str(cause)
    assert list(outside.iterdir()) == []


async def test_put_never_takes_the_catalog_or_the_run_logs() -> None:
    write(CATALOG / "old" / "x.txt", b"old run")

    def produce() -> None:
        write(Path("new.txt"), b"new")

    task = AsyncPythonTask("p", produce, catalog=Catalog(put=["**/*.txt"]))
    async with task.as_async_pipeline().stream(run_id="r1") as events:
        async for _ in events:
            pass
    assert [e.name for e in events.run_log.steps["p"].catalog] == ["new.txt"]


class Model:
    def __init__(self, weights: list[int]) -> None:
        self.weights = weights


async def test_pickled_returns_are_stored_in_the_catalog_and_passed_on() -> None:
    async def train() -> Model:
        return Model([1, 2, 3])

    async def use(model: Model) -> int:
        return sum(model.weights)

    pipeline = AsyncPipeline(
        [
            AsyncPythonTask("train", train, returns=[pickled("model")]),
            AsyncPythonTask("use", use, returns=["total"]),
        ]
    )
    async with pipeline.stream(run_id="r1") as events:
        async for _ in events:
            pass
    log = events.run_log
    assert log.parameters_out["total"] == 6
    (entry,) = log.steps["train"].catalog
    assert (entry.name, entry.stage, entry.parameter) == (
        "%pickled/train/model.pickle",
        "pickled",
        "model",
    )
    data = read(CATALOG / "r1" / "%pickled" / "train" / "model.pickle")
    assert entry.sha256 == sha(data)
    assert pickle.loads(data).weights == [1, 2, 3]


async def test_a_value_that_cannot_be_pickled_fails_its_step() -> None:
    async def make() -> object:
        return lambda: None

    task = AsyncPythonTask("m", make, returns=[pickled("f")])
    cause, log = await run_failing(task.as_async_pipeline(), "r1")
    assert str(cause).startswith("step 'm': pickled return 'f' cannot be pickled")
    assert "f" not in log.parameters_out


def test_the_folders_are_resolved_once_per_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runnable_trio._catalog import RunCatalog

    looked: list[str] = []
    lstat = os.lstat

    def counted(path: Any, **kwargs: Any) -> os.stat_result:
        looked.append(os.fspath(path))
        return lstat(path, **kwargs)

    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    monkeypatch.chdir(tmp_path / "one")
    monkeypatch.setattr(os, "lstat", counted)
    first = RunCatalog.for_run("run-a", "cat", "logs")
    second = RunCatalog.for_run("run-b", "cat", "logs")
    assert looked == ["cat", "logs"]  # the catalog and the excluded folder, once
    assert first.root == tmp_path / "one" / "cat" / "run-a"
    assert second.root == tmp_path / "one" / "cat" / "run-b"
    assert second.excluded == (tmp_path / "one" / "cat", tmp_path / "one" / "logs")
    monkeypatch.chdir(tmp_path / "two")  # another working folder: its own folders
    third = RunCatalog.for_run("run-c", "cat", "logs")
    assert third.root == tmp_path / "two" / "cat" / "run-c"
    assert third.workdir == tmp_path / "two"
    assert looked == ["cat", "logs", "cat", "logs"]


@pytest.mark.parametrize(
    "name",
    ["cat", "missing", "afile", "link", "dangling", "loop", "sub/cat", "link/inner", ".", "..", ""],
)
def test_a_folder_is_resolved_from_here_as_path_resolve_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    from runnable_trio._catalog import _resolved_here

    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    Path("cat").mkdir()
    Path("afile").write_text("")
    Path("sub/cat").mkdir(parents=True)
    (tmp_path / "elsewhere" / "inner").mkdir(parents=True)
    Path("link").symlink_to(tmp_path / "elsewhere")  # a link is followed, as resolve() does
    Path("dangling").symlink_to(tmp_path / "gone")
    Path("loop").symlink_to("loop")
    try:
        expected: Path | type[BaseException] = Path(name).resolve()
    except RuntimeError as exc:  # the symlink loop
        expected = type(exc)
    if isinstance(expected, Path):
        assert _resolved_here(name, Path.cwd()) == expected
    else:
        with pytest.raises(expected):
            _resolved_here(name, Path.cwd())


async def test_a_chdir_between_runs_gives_each_run_its_own_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def produce() -> str:
        Path("data.json").write_text(os.getcwd())
        return "done"

    # "**/*.json" also matches the run logs under .run_log_store/: only the excluded folders
    # of the working folder the run started in keep them out.
    pipeline = AsyncPythonTask("t", produce, catalog=Catalog(put=["**/*.json"])).as_async_pipeline()
    for index, name in enumerate(["one", "two", "one"]):
        folder = tmp_path / name
        folder.mkdir(exist_ok=True)
        monkeypatch.chdir(folder)
        run_id = f"{name}-{index}"
        run_log = await run(pipeline, run_id=run_id)
        put = folder / ".catalog" / run_id
        assert (put / "data.json").read_text() == str(folder)
        assert sorted(p.relative_to(put).as_posix() for p in put.rglob("*")) == ["data.json"]
        assert [entry.name for entry in run_log.steps["t"].catalog] == ["data.json"]
    assert sorted(p.name for p in (tmp_path / "one" / ".catalog").iterdir()) == ["one-0", "one-2"]
    assert sorted(p.name for p in (tmp_path / "two" / ".catalog").iterdir()) == ["two-1"]
