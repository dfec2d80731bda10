"""Attacks on a first run's catalog folders (``_catalog._resolved_here``): a folder name of one
part that is not a link is taken as the working folder's child after one ``lstat``; anything
else is resolved. Whatever the name, the folder must be the one ``Path.resolve`` gives from the
working folder the run starts in (DESIGN.md, "Files stay under their roots": the catalog and
run-log folders are what a ``put`` never takes files from)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runnable_trio import _catalog
from runnable_trio._catalog import RunCatalog, _resolved_here

_HOSTILE = [
    "~",  # no home expansion, by either
    " ",
    "C:",
    "-",
    "...",
    "cat.",
    ".cat",
    "caf\u00e9",
    "\udcff",  # a name that is not UTF-8 (surrogateescape)
    "x" * 300,  # lstat: ENAMETOOLONG (an OSError that is not FileNotFoundError)
    "a\x00b",  # lstat and resolve: ValueError
    "afile",  # a file, not a folder
    "fifo",
    "linked-file",  # a link to a file outside
]


@pytest.mark.parametrize("name", _HOSTILE, ids=repr)
def test_a_hostile_folder_name_is_resolved_as_path_resolve_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    Path("afile").write_text("")
    os.mkfifo("fifo")
    (tmp_path / "outside.txt").write_text("")
    Path("linked-file").symlink_to(tmp_path / "outside.txt")
    try:
        expected: Path | type[BaseException] = Path(name).resolve()
    except (ValueError, OSError) as exc:
        expected = type(exc)
    if isinstance(expected, Path):
        assert _resolved_here(name, Path.cwd()) == expected
    else:
        with pytest.raises(expected):
            _resolved_here(name, Path.cwd())


def test_a_link_planted_where_the_folder_was_is_followed_by_a_new_working_folder_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The cache is keyed by the working folder: a folder renamed and made again under the
    # old name, now with the catalog a link, is looked at anew once the process is in a
    # working folder of another name, and as resolve() sees it.
    monkeypatch.setattr(_catalog, "_roots", {})
    first = tmp_path / "w"
    (first / "cat").mkdir(parents=True)
    monkeypatch.chdir(first)
    assert RunCatalog.for_run("r1", "cat").folder == first / "cat"
    first.rename(tmp_path / "w-old")  # the process's working folder renamed under it
    assert os.getcwd() == str(tmp_path / "w-old")
    assert RunCatalog.for_run("r2", "cat").folder == tmp_path / "w-old" / "cat"
    (tmp_path / "elsewhere").mkdir()
    fresh = tmp_path / "w2"
    fresh.mkdir()
    (fresh / "cat").symlink_to(tmp_path / "elsewhere")
    monkeypatch.chdir(fresh)
    assert RunCatalog.for_run("r3", "cat").folder == tmp_path / "elsewhere"


def test_a_chdir_by_another_thread_during_the_look_does_not_change_what_is_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The run starts in "a", whose run-log folder is a link to "a/real-logs"; another thread
    # of the process changes the working folder to "b" (no such folder there) between the
    # getcwd() that names the working folder and the look at its folder. The folder cached
    # for "a" must be what resolve() gives from "a" (the link's target: what a put of "**/*"
    # in "a" must leave out), not "a/logs" unresolved.
    monkeypatch.setattr(_catalog, "_roots", {})
    a, b = tmp_path / "a", tmp_path / "b"
    (a / "real-logs").mkdir(parents=True)
    (a / "logs").symlink_to(a / "real-logs")
    b.mkdir()
    monkeypatch.chdir(a)
    lstat = os.lstat

    def racing(path: str | os.PathLike[str], **kwargs: object) -> os.stat_result:
        os.chdir(b)  # as another thread would, at that moment
        return lstat(path, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "lstat", racing)
    catalog = RunCatalog.for_run("r", "cat", "logs", workdir=str(a))
    monkeypatch.setattr(os, "lstat", lstat)
    assert catalog.excluded[1] == a / "real-logs"
