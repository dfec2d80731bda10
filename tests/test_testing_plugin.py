"""The pytest plugin ``runnable_trio``, run in throw-away pytest sessions; and the assertions."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from runnable_trio import AsyncPythonTask, FileRunLogStore, RunLog, Status, StepLog
from runnable_trio.testing import assert_events, assert_final, run_to_end, strip_meta

pytest_plugins = ["pytester"]

PIPELINE = """
import trio
from runnable_trio import AsyncPipeline, AsyncPythonTask, Parallel

async def tokens(n):
    for i in range(n):
        await trio.sleep(1)
        yield {"type": "token", "i": i}
    yield {"type": "done", "count": n}

def pipeline():
    return AsyncPipeline([
        AsyncPythonTask("first", tokens, returns=["count"]),
        Parallel("fan", {
            "a": AsyncPythonTask("g", tokens).as_async_pipeline(),
            "b": AsyncPythonTask("g", tokens).as_async_pipeline(),
        }),
    ])
"""

INI = """
[pytest]
trio_mode = true
addopts = -p no:cacheprovider
"""


def test_the_entry_point_is_registered() -> None:
    points = importlib.metadata.entry_points(group="pytest11")
    assert [p.value for p in points if p.name == "runnable_trio"] == [
        "runnable_trio.testing.plugin"
    ]


def test_the_marker_runs_the_test_once_per_way(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(
        userpipe=PIPELINE,
        test_user="""
import pytest
from userpipe import pipeline

@pytest.mark.leave_every_way
async def test_my_pipeline(leave, runnable_config, runnable_clock):
    seen = []
    left = await leave.run(pipeline(), parameters={"n": 3},
                           configuration_file=runnable_config, on_event=seen.append)
    assert seen == left.events
    print("LEFT", leave.surface, leave.way.value, left.at, left.run_log.status)

@pytest.mark.leave_every_way(surfaces=["stream"], ways=["break", "raise"], at=[0, 1])
async def test_chosen(leave, runnable_config, runnable_clock):
    left = await leave.run(pipeline(), parameters={"n": 2}, configuration_file=runnable_config)
    assert left.early
    assert len(left.events) == leave.at + 1
""",
    )
    result = pytester.runpytest("-v", "-s")
    result.assert_outcomes(passed=14 + 4)
    out = result.stdout.str()
    assert "test_my_pipeline[execute_streaming-sse_disconnect]" in out
    assert "test_chosen[stream-raise-at1]" in out
    # The random index is the same from one session to the next (seeded by the test's id).
    first = sorted(re.findall(r"LEFT .*", out))
    again = pytester.runpytest("-s", "-k", "test_my_pipeline").stdout.str()
    assert first == sorted(re.findall(r"LEFT .*", again))
    seeded = pytester.runpytest("-s", "-k", "my_pipeline and break", "--runnable-trio-seed=5")
    seeded.assert_outcomes(passed=2)


def test_a_leak_fails_the_users_test_with_the_seed(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(
        userpipe=PIPELINE,
        test_user="""
import pytest
import runnable_trio.testing._leave as leave_module
from userpipe import pipeline

@pytest.mark.leave_every_way(surfaces=["stream"], ways=["break"])
async def test_leaky(leave, runnable_config, monkeypatch, runnable_clock):
    monkeypatch.setattr(leave_module, "not_final", lambda run_log: ["step pretend"])
    await leave.run(pipeline(), parameters={"n": 2}, configuration_file=runnable_config)
""",
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*records still PROCESSING in memory: step pretend*", "*runnable_trio leave seed: *"]
    )


def test_misuse_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(
        test_user="""
import pytest

@pytest.mark.leave_every_way
async def test_no_fixture():
    pass

async def test_fixture_without_marker(leave):
    pass
"""
    )
    result = pytester.runpytest()
    assert "must take the 'leave' fixture" in result.stdout.str() + result.stderr.str()


def test_fixtures_give_a_folder_config_store_and_clock(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(
        userpipe=PIPELINE,
        test_user="""
import os, trio
from pathlib import Path
from runnable_trio import MemoryRunLogStore, Status
from runnable_trio.testing import run_to_end
from userpipe import pipeline

async def test_runs_land_in_the_tests_folder(runnable_folder, runnable_config, run_log_store,
                                             runnable_clock, memory_store):
    assert Path.cwd() == runnable_folder
    start = trio.current_time()
    result = await run_to_end(pipeline(), parameters={"n": 3},
                              configuration_file=runnable_config)
    assert trio.current_time() - start == 6  # virtual time: 3 s, then the branches' 3 s
    assert run_log_store.load(result.run_log.run_id).status is Status.SUCCESS
    assert (runnable_folder / "runs" / (result.run_log.run_id + ".events.jsonl")).exists()
    assert isinstance(memory_store, MemoryRunLogStore)
    assert result.run_log.code is None or result.run_log.code.commit is None
""",
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_the_plugin_does_nothing_to_tests_that_do_not_use_it(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(
        test_plain="""
import os
def test_cwd_untouched(tmp_path):
    assert os.getcwd() != str(tmp_path)
"""
    )
    pytester.runpytest().assert_outcomes(passed=1)
    pytester.runpytest("-p", "no:runnable_trio").assert_outcomes(passed=1)


# run_to_end and the assertions.


async def test_run_to_end_on_both_surfaces(autojump_clock: trio.testing.MockClock) -> None:
    async def gen() -> Any:
        yield {"type": "token", "text": "hi"}
        yield {"type": "done", "x": 1}

    pipeline = AsyncPythonTask("gen", gen, returns=["x"]).as_async_pipeline()
    for surface in ("stream", "execute_streaming"):
        events, run_log, error = await run_to_end(pipeline, surface=surface, attribution=True)
        assert error is None
        assert run_log.status is Status.SUCCESS
        assert_events(
            events,
            [
                {"type": "run.started"},
                {"type": "step.started"},
                {"type": "token", "text": "hi"},
                {"type": "done", "x": 1},
                {"type": "step.completed"},
                {"type": "run.completed"},
            ],
            subset=True,
        )
        assert_events(events, [{"type": "token", "text": "hi"}], types=["token"])
    with pytest.raises(ValueError, match="surface must be"):
        await run_to_end(pipeline, surface="thread")  # type: ignore[arg-type]


async def test_run_to_end_gives_the_error_of_a_failed_run() -> None:
    async def fail() -> None:
        raise KeyError("k")

    result = await run_to_end(AsyncPythonTask("f", fail).as_async_pipeline())
    assert result.error is not None
    assert isinstance(result.cause, KeyError)
    assert result.run_log.status is Status.FAIL
    assert_final(result.run_log)


def test_assert_events_shows_a_diff_and_ignores_meta() -> None:
    events = [{"type": "a", "_meta": {"seq": 1}}, {"type": "b", "n": 1}]
    assert strip_meta(events) == [{"type": "a"}, {"type": "b", "n": 1}]
    assert_events(events, [{"type": "a"}, {"type": "b", "n": 1}])
    with pytest.raises(AssertionError) as caught:
        assert_events(events, [{"type": "a"}, {"type": "b", "n": 2}])
    message = str(caught.value)
    assert "-1: {'type': 'b', 'n': 2}" in message
    assert "+1: {'type': 'b', 'n': 1}" in message
    with pytest.raises(AssertionError, match="2 received, 1 expected"):
        assert_events(events, [{"type": "a"}], subset=True)


def test_assert_final_names_every_record_still_processing() -> None:
    run_log = RunLog(run_id="r")
    step = run_log.steps["s"] = StepLog("s", "parallel", "s", status=Status.CANCELLED)
    from runnable_trio import BranchLog

    step.branches["a"] = BranchLog("a")
    with pytest.raises(AssertionError) as caught:
        assert_final(run_log)
    assert "run r" in str(caught.value)
    assert "branch s.a" in str(caught.value)
    run_log.status = Status.CANCELLED
    step.branches["a"].status = Status.CANCELLED
    assert_final(run_log)


def test_run_log_store_fixture_reads_the_configured_folder(
    run_log_store: FileRunLogStore, runnable_folder: Path
) -> None:
    assert Path(run_log_store.folder) == runnable_folder / "runs"


@pytest.mark.leave_every_way(ways=["break", "end"], at=1)
async def test_leave_checks_the_store_given_with_store(
    leave: Any, memory_store: Any, runnable_clock: trio.testing.MockClock
) -> None:
    async def gen() -> Any:
        for i in range(3):
            await trio.sleep(1)
            yield {"type": "token", "i": i}

    left = await leave.run(AsyncPythonTask("gen", gen).as_async_pipeline(), store=memory_store)
    assert memory_store.load(left.run_log.run_id) is left.run_log
