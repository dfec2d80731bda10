"""Files stay under their roots: planted symlinks and files fail the run, nothing outside moves."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from runnable_trio import (
    AsyncPipeline,
    AsyncPythonTask,
    ExecutionFailedError,
    RunConfigurationError,
    Status,
    pickled,
    retry_stream,
)
from runnable_trio._files import open_folder, replace_atomically
from runnable_trio._filestore import FileRunLogStore

from .helpers import collect

STORE = Path(".run_log_store")


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A file outside every root, which nothing may read, write or truncate."""
    target = tmp_path.parent / f"{tmp_path.name}-outside.txt"
    target.write_text("precious")
    return target


def plant(path: str, *, link_to: Path | None = None, text: str = "") -> None:
    """A symlink (or a file holding ``text``) where a run's file or folder would go."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    if link_to is not None:
        Path(path).symlink_to(link_to)
    else:
        Path(path).write_text(text)


def intact(path: Path) -> bool:
    return path.read_text() == "precious"


async def ok() -> str:
    return "fine"


def pipeline() -> AsyncPipeline:
    return AsyncPythonTask("a", ok, returns=["x"]).as_async_pipeline()


async def fails_at_start(**kwargs: Any) -> BaseException:
    with pytest.raises(ExecutionFailedError) as caught:
        await collect(pipeline(), **kwargs)
    assert caught.value.__cause__ is not None
    return caught.value.__cause__


@pytest.mark.parametrize("name", ["r1.journal.jsonl", "r1.json"])
async def test_a_symlink_planted_where_the_run_log_goes_fails_the_run(
    outside: Path, name: str
) -> None:
    plant(f".run_log_store/{name}", link_to=outside)
    cause = await fails_at_start(run_id="r1")
    assert isinstance(cause, RunConfigurationError)
    assert f".run_log_store/{name}' is a symlink" in str(cause)
    assert intact(outside)
    assert (STORE / name).is_symlink()  # left as it was
    if name.endswith("jsonl"):
        assert not (STORE / "r1.json").exists()  # the claim was undone: the id is free


async def test_a_file_already_where_the_journal_goes_fails_the_run() -> None:
    plant(".run_log_store/r1.journal.jsonl", text="someone else's\n")
    cause = await fails_at_start(run_id="r1")
    assert "r1.journal.jsonl" in str(cause)
    assert "already exists" in str(cause)
    assert (STORE / "r1.journal.jsonl").read_text() == "someone else's\n"


async def test_a_symlink_planted_at_the_event_log_fails_the_call(outside: Path) -> None:
    plant(".run_log_store/r1.events.jsonl", link_to=outside)
    with pytest.raises(RunConfigurationError, match=r"r1\.events\.jsonl.*(symlink|exists)"):
        pipeline().execute_streaming(run_id="r1", event_log=True)
    assert intact(outside)


async def test_a_symlinked_run_catalog_fails_the_call_and_nothing_lands_outside(
    tmp_path: Path,
) -> None:
    elsewhere = tmp_path.parent / f"{tmp_path.name}-elsewhere"
    elsewhere.mkdir()
    plant(".catalog/r1", link_to=elsewhere)

    async def model() -> dict[str, int]:
        return {"w": 1}

    task = AsyncPythonTask("m", model, returns=[pickled("model")]).as_async_pipeline()
    with pytest.raises(RunConfigurationError, match=r"\.catalog/r1' is a symlink"):
        await collect(task, run_id="r1")
    assert list(elsewhere.iterdir()) == []


async def test_a_symlink_planted_inside_a_retried_runs_catalog_is_not_followed(
    tmp_path: Path,
) -> None:
    elsewhere = tmp_path.parent / f"{tmp_path.name}-elsewhere"
    elsewhere.mkdir()
    failing = {"yes"}

    async def model() -> dict[str, int]:
        if failing:
            raise ValueError("not yet")
        return {"w": 1}

    task = AsyncPythonTask("m", model, returns=[pickled("model")]).as_async_pipeline()
    with pytest.raises(ExecutionFailedError):
        await collect(task, run_id="r1")
    plant(".catalog/r1/%pickled", link_to=elsewhere)
    failing.clear()
    async with retry_stream(task, "r1") as events:
        with pytest.raises(ExecutionFailedError, match="is a symlink"):
            async for _ in events:
                pass
    assert events.run_log.status is Status.FAIL
    assert list(elsewhere.iterdir()) == []


async def test_a_retry_does_not_write_through_a_symlink_at_its_journal(outside: Path) -> None:
    async def boom() -> None:
        raise ValueError("boom")

    failing = AsyncPythonTask("a", boom).as_async_pipeline()
    with pytest.raises(ExecutionFailedError):
        await collect(failing, run_id="r1")
    plant(".run_log_store/r1.journal.jsonl", link_to=outside)
    async with retry_stream(failing, "r1") as events:
        with pytest.raises(ExecutionFailedError, match="symlink"):
            async for _ in events:
                pass
    assert intact(outside)


def test_readers_do_not_read_through_a_symlinked_snapshot(outside: Path) -> None:
    STORE.mkdir()
    (STORE / "r1.json").symlink_to(outside)
    store = FileRunLogStore()
    assert not store.exists("r1")
    with pytest.raises(RunConfigurationError, match="symlink"):
        store.load("r1")
    assert store.runs() == []
    assert store.alive("r1") is False


def test_replace_atomically_replaces_a_symlink_not_its_target(
    tmp_path: Path, outside: Path
) -> None:
    link = tmp_path / "file"
    link.symlink_to(outside)
    replace_atomically(link, b"new")
    assert not link.is_symlink()
    assert link.read_bytes() == b"new"
    assert outside.read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # no temporary left


def test_open_folder_follows_no_symlink_below_its_root(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "link")
    with open_folder(tmp_path, "real", "made", create=True) as fd:
        assert os.listdir(fd) == []
    with (
        pytest.raises(FileExistsError, match="link' is a symlink"),
        open_folder(tmp_path, "link", "x", create=True),
    ):
        pass
    assert not (tmp_path / "real" / "x").exists()


def test_a_described_os_error_round_trips_through_pickle() -> None:
    import errno
    import pickle

    from runnable_trio._files import describe_os_error

    error = describe_os_error(OSError(errno.EMFILE, "Too many open files"), "opening the journal")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert (copy.errno, copy.detail, copy.limit, str(copy)) == (
        error.errno, error.detail, error.limit, str(error),
    )  # fmt: skip
    assert "RLIMIT_NOFILE" in str(copy)


def spares(folder: Path = STORE) -> list[Path]:
    return sorted((folder / ".writers").glob("*.spare"))


async def test_a_run_after_another_links_the_spare_the_first_made_to_its_journal() -> None:
    inodes: list[int] = []

    async def look() -> str:
        inodes.append((STORE / "r2.journal.jsonl").stat().st_ino)
        return "fine"

    await collect(pipeline(), run_id="r1")
    (spare,) = spares()  # made as r1 ended
    assert spare.read_bytes() == b""
    made = spare.stat().st_ino
    await collect(AsyncPythonTask("a", look, returns=["x"]).as_async_pipeline(), run_id="r2")
    assert inodes == [made]  # r2's journal is the spare, renamed: no file created on the loop
    assert spares() != [spare]  # used; r2 made the next one as it ended
    assert FileRunLogStore().load("r2").status is Status.SUCCESS


@pytest.mark.parametrize("link", [True, False])
async def test_a_spare_does_not_claim_a_name_already_taken(outside: Path, link: bool) -> None:
    await collect(pipeline(), run_id="r0")  # leaves a spare
    (spare,) = spares()
    if link:
        plant(".run_log_store/r1.journal.jsonl", link_to=outside)
    else:
        plant(".run_log_store/r1.journal.jsonl", text="someone else's\n")
    cause = await fails_at_start(run_id="r1")
    assert ("is a symlink" if link else "already exists") in str(cause)
    assert intact(outside)
    if not link:
        assert (STORE / "r1.journal.jsonl").read_text() == "someone else's\n"
    assert spares() == [spare]  # still spare, and still empty
    assert spare.read_bytes() == b""
    await collect(pipeline(), run_id="r2")
    assert FileRunLogStore().load("r2").status is Status.SUCCESS


async def test_a_spare_deleted_by_hand_is_done_without() -> None:
    await collect(pipeline(), run_id="r0")
    for spare in spares():
        spare.unlink()
    await collect(pipeline(), run_id="r1")
    assert FileRunLogStore().load("r1").status is Status.SUCCESS


def test_the_sweep_deletes_the_spares_of_dead_writers_only(tmp_path: Path) -> None:
    from runnable_trio._writerlock import _sweep, writer_lock
    from runnable_trio._writers import APPENDS

    writers = tmp_path / ".writers"
    writers.mkdir()
    dead = "12345-0123456789ab"
    (writers / f"{dead}.lock").write_text("")  # its process is gone: nobody holds it
    (writers / f"{dead}.0a0b0c0d.spare").write_text("")
    (writers / "99999-ba9876543210.0a0b0c0d.spare").write_text("")  # its lock swept already
    live = writer_lock(tmp_path).token  # sweeps
    assert sorted(p.name for p in writers.iterdir()) == [f"{live}.lock"]
    APPENDS.make_spare(tmp_path)
    (mine,) = spares(tmp_path)
    assert mine.name.startswith(live)
    fd = os.open(writers, os.O_RDONLY)
    try:
        _sweep(fd)  # another process's sweep: this one is alive
    finally:
        os.close(fd)
    assert spares(tmp_path) == [mine]


def test_a_described_os_error_names_the_file_the_os_named(tmp_path: Path) -> None:
    import errno

    from runnable_trio._files import describe_os_error

    planted = tmp_path / "1234-abcd.lock"
    planted.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(FileExistsError) as caught:
        os.open(planted, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    error = describe_os_error(caught.value, "run 'r' cannot start")
    assert error.errno == errno.EEXIST
    assert (
        str(error) == f"[Errno {errno.EEXIST}] run 'r' cannot start: File exists: {str(planted)!r}"
    )
    # Named once, however many times it is described on the way up.
    again = describe_os_error(error, "retrying")
    assert str(again).count(str(planted)) == 1
