"""The pytest plugin ``runnable_trio`` (entry point ``pytest11``), on when the package is installed.

It adds fixtures and one marker and changes nothing else: a test that uses none of them runs
as if the plugin were absent.

Fixtures:
    runnable_folder: a fresh working folder for the test (the test runs inside it), so runs
        write their ``.run_log_store/`` and ``.catalog/`` there and catalog ``put`` takes
        files from there.
    runnable_config: the path of a configuration file in that folder: file run-log store and
        catalog in it, event log on, no git probe. Pass it as ``configuration_file=``.
    run_log_store: the ``FileRunLogStore`` the configuration names (to read records back).
    memory_store: a new ``MemoryRunLogStore``.
    runnable_clock: a Trio ``MockClock`` with autojump: a Trio test taking it runs on virtual
        time (pytest-trio uses any ``Clock`` fixture a test takes as the run's clock).
    leave: one way of leaving a stream, for a test marked ``leave_every_way`` (see below).

Marker ``@pytest.mark.leave_every_way(surfaces=..., ways=..., at=...)``: the test runs once
per surface and way; it takes the ``leave`` fixture and calls ``await leave.run(pipeline,
...)``, which leaves the run that way after event ``at`` (by default an index drawn from the
events of a first full run, with a seed from the test's id, or from
``--runnable-trio-seed``) and makes the checks of :func:`runnable_trio.testing.leave`.
"""

from __future__ import annotations

import random
import zlib
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio.testing

from .._filestore import FileRunLogStore
from .._store import MemoryRunLogStore
from . import _leave
from ._faults import tracking
from ._leave import Left, OnEvent, Way, ways_for
from ._results import Surface, run_to_end
from ._tracker import CallTracker

MARKER = "leave_every_way"

CONFIG = """\
run_log_store:
  type: file
  folder: {folder}/runs
catalog:
  folder: {folder}/catalog
event_log: true
code_identity: false
"""


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--runnable-trio-seed",
        type=int,
        default=None,
        help="runnable_trio: the seed for the event indices of leave_every_way tests "
        "(default: one per test, from its id)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(surfaces=('execute_streaming', 'stream'), ways=None, at=None): run the test "
        "once per way of leaving a stream; it takes the 'leave' fixture (runnable_trio)",
    )


@attrs.frozen
class LeaveCase:
    surface: Surface
    way: Way
    at: int | None

    def __str__(self) -> str:
        where = "" if self.at is None else f"-at{self.at}"
        return f"{self.surface}-{self.way.value}{where}"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker(MARKER)
    if marker is None:
        return
    if "leave" not in metafunc.fixturenames:
        raise pytest.UsageError(
            f"{metafunc.definition.nodeid}: a test marked {MARKER} must take the 'leave' fixture"
        )
    unknown = set(marker.kwargs) - {"surfaces", "ways", "at"}
    if marker.args or unknown:
        raise pytest.UsageError(
            f"{metafunc.definition.nodeid}: {MARKER} takes the keywords surfaces, ways and at "
            f"(got {marker.args!r} {sorted(unknown)!r})"
        )
    surfaces = marker.kwargs.get("surfaces", ("execute_streaming", "stream"))
    ways = marker.kwargs.get("ways")
    wanted = None if ways is None else {Way(w) for w in ways}
    at = marker.kwargs.get("at")
    indices = [at] if at is None or isinstance(at, int) else list(at)
    cases = [
        LeaveCase(surface, way, index)  # type: ignore[arg-type]
        for surface, way in ways_for(surfaces)
        if wanted is None or way in wanted
        for index in indices
    ]
    metafunc.parametrize("leave", cases, ids=str, indirect=True)


class Leaver:
    """One way of leaving, given to a test marked ``leave_every_way``."""

    def __init__(self, case: LeaveCase, seed: int) -> None:
        self.surface = case.surface
        self.way = case.way
        self.at = case.at
        self.seed = seed

    def __repr__(self) -> str:
        return f"Leaver({self.surface}, {self.way.value}, at={self.at}, seed={self.seed})"

    async def run(self, pipeline: Any, *, on_event: OnEvent | None = None, **kwargs: Any) -> Left:
        """Run ``pipeline`` and leave it this way; the checks of ``leave()`` are made."""
        at = self.at
        if at is None:
            with tracking(CallTracker()):
                count = len((await run_to_end(pipeline, surface=self.surface, **kwargs)).events)
            at = random.Random(self.seed).randrange(max(count, 1))
        try:
            return await _leave.leave(
                pipeline, self.way, at, surface=self.surface, on_event=on_event, **kwargs
            )
        except AssertionError as exc:
            exc.add_note(f"runnable_trio leave seed: {self.seed} (--runnable-trio-seed)")
            raise


@pytest.fixture
def leave(request: pytest.FixtureRequest) -> Leaver:
    """One way of leaving a stream (parametrised by the ``leave_every_way`` marker)."""
    case = getattr(request, "param", None)
    if not isinstance(case, LeaveCase):
        raise pytest.UsageError(
            f"the 'leave' fixture needs the test marked @pytest.mark.{MARKER}(...)"
        )
    seed = request.config.getoption("--runnable-trio-seed")
    if seed is None:
        seed = zlib.crc32(request.node.nodeid.encode())
    return Leaver(case, seed)


@pytest.fixture
def runnable_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh working folder the test runs in."""
    folder = tmp_path / "runnable"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


@pytest.fixture
def runnable_config(runnable_folder: Path) -> str:
    """A configuration file keeping the test's run logs and catalog in its own folder."""
    path = runnable_folder / "runnable.yaml"
    path.write_text(CONFIG.format(folder=runnable_folder.as_posix()), encoding="utf-8")
    return str(path)


@pytest.fixture
def run_log_store(runnable_config: str, runnable_folder: Path) -> FileRunLogStore:
    """The file store of ``runnable_config``."""
    return FileRunLogStore(runnable_folder / "runs")


@pytest.fixture
def memory_store() -> MemoryRunLogStore:
    """A run-log store of its own for the test, in memory."""
    return MemoryRunLogStore()


@pytest.fixture
def runnable_clock() -> trio.testing.MockClock:
    """Virtual time that jumps ahead whenever every task is waiting."""
    return trio.testing.MockClock(autojump_threshold=0)
