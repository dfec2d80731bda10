"""runnable_trio.testing fault injection: each fault does what it says, and only where asked.

Every test compares against the same run without the fault, so a fault that did nothing fails.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from runnable_trio import (
    AsyncPipeline,
    AsyncPythonTask,
    Catalog,
    Map,
    Parallel,
    Retry,
    ReturnsError,
    Status,
    StepTimeoutError,
    pickled,
)
from runnable_trio.testing import (
    FAULTS_KEY,
    Delay,
    ExtraEvents,
    FailPut,
    FaultPlan,
    Hang,
    Raise,
    StopAfter,
    assert_final,
    inject,
    path_matches,
    run_to_end,
    strip_meta,
)

calls: list[str] = []


async def llm(prompt: str) -> AsyncIterator[dict[str, Any]]:
    calls.append("llm")
    for word in prompt.split():
        await trio.sleep(0.1)
        yield {"type": "token", "text": word}
    yield {"type": "done", "answer": prompt.upper()}


async def double(x: int) -> int:
    calls.append(f"double {x}")
    await trio.sleep(0.1)
    return 2 * x


def sync_add(x: int) -> int:
    return x + 1


def llm_pipeline(**kwargs: Any) -> AsyncPipeline:
    return AsyncPythonTask("llm", llm, returns=["answer"], **kwargs).as_async_pipeline()


def translate() -> AsyncPipeline:
    return AsyncPipeline(
        [
            Parallel(
                "translate",
                {
                    lang: AsyncPythonTask(
                        "llm", llm, returns=[f"{lang}_answer"]
                    ).as_async_pipeline()
                    for lang in ("spanish", "french")
                },
            )
        ]
    )


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    calls.clear()


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("translate.*.llm", "translate.spanish.llm", True),
        ("translate.*.llm", "translate.spanish.other", False),
        ("translate.*.llm", "translate.llm", False),
        ("map_step.3.call", "map_step.3.call", True),
        ("map_step.3.call", "map_step.13.call", False),
        ("**.llm", "llm", True),
        ("**.llm", "a.b.c.llm", True),
        ("a.**", "a.b.c", True),
        ("step", "step", True),
        ("st?p", "step", True),
        ("step", "step.x.y", False),
    ],
)
def test_path_patterns(pattern: str, path: str, matches: bool) -> None:
    assert path_matches(pattern, path) is matches


async def test_raise_on_attempt_n_only(autojump_clock: trio.testing.MockClock) -> None:
    pipeline = AsyncPythonTask(
        "double", double, returns=["y"], retry=Retry(attempts=3, backoff=0.0)
    ).as_async_pipeline()
    with inject({"double": Raise(ValueError("flaky"), attempt=2)}) as plan:
        result = await run_to_end(pipeline, parameters={"x": 2})
    assert result.error is None
    attempts = result.run_log.steps["double"].attempts
    assert [a.status for a in attempts] == [Status.SUCCESS]  # attempt 1 succeeded
    with inject({"double": Raise(ValueError("flaky"), attempt=1)}) as plan:
        result = await run_to_end(pipeline, parameters={"x": 2})
    attempts = result.run_log.steps["double"].attempts
    assert [a.status for a in attempts] == [Status.FAIL, Status.SUCCESS]
    assert attempts[0].error_message == "flaky"
    assert attempts[0].metrics[FAULTS_KEY] == ["raise ValueError('flaky') before"]
    assert FAULTS_KEY not in attempts[1].metrics
    assert [str(i) for i in plan.injected] == ["double attempt 1: raise ValueError('flaky') before"]
    assert calls == ["double 2", "double 2"]  # the failed attempt never called the function


async def test_raise_on_every_attempt_fails_the_run_with_the_given_error() -> None:
    pipeline = AsyncPythonTask(
        "double", double, returns=["y"], retry=Retry(attempts=3, backoff=0.0)
    ).as_async_pipeline()
    result = await run_to_end(pipeline, parameters={"x": 2}, faults={"double": Raise(KeyError)})
    assert isinstance(result.cause, KeyError)
    assert any("injected by runnable_trio.testing" in n for n in result.cause.__notes__)
    assert len(result.run_log.steps["double"].attempts) == 3
    assert calls == []
    assert_final(result.run_log)


async def test_raise_after_the_call_and_after_an_event() -> None:
    pipeline = AsyncPythonTask("double", double, returns=["y"]).as_async_pipeline()
    result = await run_to_end(
        pipeline, parameters={"x": 1}, faults={"double": Raise(OSError("late"), when="after")}
    )
    assert isinstance(result.cause, OSError)
    assert calls == ["double 1"]  # the function ran first

    result = await run_to_end(
        llm_pipeline(),
        parameters={"prompt": "a b c"},
        faults={"llm": Raise(RuntimeError, after_event=2)},
    )
    assert isinstance(result.cause, RuntimeError)
    assert strip_meta(result.events) == [
        {"type": "token", "text": "a"},
        {"type": "token", "text": "b"},
    ]


async def test_faults_apply_only_where_the_pattern_matches() -> None:
    with inject({"translate.french.llm": Raise(ValueError("fr"))}) as plan:
        result = await run_to_end(translate(), parameters={"prompt": "hi"})
    branches = result.run_log.steps["translate"].branches
    assert branches["french"].status is Status.FAIL
    assert str(result.cause) == "fr"
    assert [i.path for i in plan.injected] == ["translate.french.llm"]
    assert plan.injected_at("translate.*.llm") == plan.injected


async def test_a_map_item_by_index() -> None:
    branch = AsyncPythonTask("call", double, returns=["y"]).as_async_pipeline()
    pipeline = AsyncPipeline([Map("each", "xs", "x", branch)])
    with inject({"each.1.call": Raise(ValueError("item 1"))}) as plan:
        result = await run_to_end(pipeline, parameters={"xs": [10, 20, 30]})
    assert str(result.cause) == "item 1"
    assert [i.path for i in plan.injected] == ["each.1.call"]
    assert "double 20" not in calls


async def test_delay_before_makes_a_timeout_fire(autojump_clock: trio.testing.MockClock) -> None:
    pipeline = AsyncPythonTask("double", double, returns=["y"], timeout=1).as_async_pipeline()
    assert (await run_to_end(pipeline, parameters={"x": 1})).error is None
    start = trio.current_time()
    result = await run_to_end(pipeline, parameters={"x": 1}, faults={"double": Delay(5)})
    assert isinstance(result.cause, StepTimeoutError)
    assert trio.current_time() - start == pytest.approx(1)
    assert calls == ["double 1"]  # the second run never reached the function


async def test_delay_after_the_call_and_after_an_event(
    autojump_clock: trio.testing.MockClock,
) -> None:
    pipeline = AsyncPythonTask("double", double, returns=["y"]).as_async_pipeline()
    start = trio.current_time()
    result = await run_to_end(
        pipeline, parameters={"x": 1}, faults={"double": Delay(3, when="after")}
    )
    assert result.error is None
    assert trio.current_time() - start == pytest.approx(3.1)
    assert calls == ["double 1"]

    slow = llm_pipeline(idle_timeout=1)
    result = await run_to_end(
        slow, parameters={"prompt": "a b c"}, faults={"llm": Delay(2, after_event=1)}
    )
    assert isinstance(result.cause, StepTimeoutError)
    assert len(result.events) == 1


async def test_hang_until_cancelled(autojump_clock: trio.testing.MockClock) -> None:
    pipeline = AsyncPythonTask("double", double, returns=["y"], timeout=30).as_async_pipeline()
    start = trio.current_time()
    result = await run_to_end(pipeline, parameters={"x": 1}, faults={"double": Hang()})
    assert isinstance(result.cause, StepTimeoutError)
    assert trio.current_time() - start == pytest.approx(30)

    result = await run_to_end(
        llm_pipeline(idle_timeout=5),
        parameters={"prompt": "a b c d e"},
        faults={"llm": Hang(after_event=3)},
    )
    assert isinstance(result.cause, StepTimeoutError)
    assert [e["text"] for e in result.events] == ["a", "b", "c"]


async def test_extra_events_are_yielded_where_asked() -> None:
    extra = {"type": "token", "text": "INJECTED"}
    result = await run_to_end(
        llm_pipeline(),
        parameters={"prompt": "a b"},
        faults={"llm": ExtraEvents([extra], after_event=1)},
    )
    assert [e.get("text") for e in result.events] == ["a", "INJECTED", "b", None]
    result = await run_to_end(
        llm_pipeline(), parameters={"prompt": "a b"}, faults={"llm": ExtraEvents([extra])}
    )
    assert [e.get("text") for e in result.events] == ["INJECTED", "a", "b", None]


async def test_extra_end_event_changes_the_returns() -> None:
    fake = {"type": "done", "answer": "FAKE"}
    result = await run_to_end(
        llm_pipeline(),
        parameters={"prompt": "a"},
        faults={"llm": ExtraEvents([fake], after_event=2)},
    )
    assert result.run_log.parameters_out["answer"] == "FAKE"


async def test_stop_after_k_events_closes_the_generator() -> None:
    closed = []

    async def tokens() -> AsyncIterator[dict[str, Any]]:
        try:
            for i in range(10):
                yield {"type": "token", "i": i}
            yield {"type": "done", "n": 10}
        finally:
            closed.append(True)

    pipeline = AsyncPythonTask("gen", tokens, returns=["n"]).as_async_pipeline()
    result = await run_to_end(pipeline, faults={"gen": StopAfter(3)})
    assert [e["i"] for e in result.events] == [0, 1, 2]
    assert isinstance(result.cause, ReturnsError)  # the end event never came
    assert closed == [True]
    assert result.run_log.steps["gen"].attempts[0].metrics[FAULTS_KEY] == [
        "stop the generator after event 3"
    ]


async def test_fail_put_fails_the_step_after_its_function_ran(runnable_folder: Path) -> None:
    def produce() -> int:
        Path("out.txt").write_text("data")
        return 1

    put = AsyncPythonTask("produce", produce, catalog=Catalog(put=["out.txt"]))
    assert (await run_to_end(put.as_async_pipeline())).error is None
    result = await run_to_end(put.as_async_pipeline(), faults={"produce": FailPut()})
    assert isinstance(result.cause, OSError)
    assert result.run_log.steps["produce"].catalog == []

    keep = AsyncPythonTask("keep", double, returns=[pickled("y")])
    result = await run_to_end(
        keep.as_async_pipeline(), parameters={"x": 1}, faults={"keep": FailPut(PermissionError)}
    )
    assert isinstance(result.cause, PermissionError)
    assert "y" not in result.run_log.parameters_out


async def test_sync_tasks_take_faults_too() -> None:
    pipeline = AsyncPythonTask("add", sync_add, returns=["y"]).as_async_pipeline()
    result = await run_to_end(pipeline, parameters={"x": 1}, faults={"add": Raise(ValueError)})
    assert isinstance(result.cause, ValueError)


async def test_a_streaming_fault_on_a_coroutine_step_is_a_clear_error() -> None:
    pipeline = AsyncPythonTask("double", double, returns=["y"]).as_async_pipeline()
    result = await run_to_end(pipeline, parameters={"x": 1}, faults={"double": StopAfter(1)})
    assert "not an async generator step" in str(result.cause)
    result = await run_to_end(pipeline, parameters={"x": 1}, faults={"double": FailPut()})
    assert "puts nothing in the catalog" in str(result.cause)


async def test_the_plan_stays_with_the_run_and_blocks_nest() -> None:
    pipeline = AsyncPythonTask("double", double, returns=["y"]).as_async_pipeline()
    with inject({"double": Raise(ValueError("outer"))}):
        with inject({"double": Raise(ValueError("inner"))}):
            inner = await run_to_end(pipeline, parameters={"x": 1})
        outer = await run_to_end(pipeline, parameters={"x": 1})
    after = await run_to_end(pipeline, parameters={"x": 1})
    assert (str(inner.cause), str(outer.cause), after.error) == ("inner", "outer", None)

    run = None
    with inject({"double": Raise(ValueError("kept"))}):
        run = pipeline.execute_streaming(parameters={"x": 1})
        first = run.__anext__()  # the run starts here, inside the block
        with pytest.raises(Exception, match="kept"):
            await first
    await run.aclose()


async def test_concurrent_tests_do_not_see_each_others_plans() -> None:
    pipeline = AsyncPythonTask("double", double, returns=["y"]).as_async_pipeline()
    results: dict[str, Any] = {}

    async def with_plan() -> None:
        with inject({"double": Raise(ValueError("mine"))}):
            results["with"] = await run_to_end(pipeline, parameters={"x": 1})

    async def without() -> None:
        results["without"] = await run_to_end(pipeline, parameters={"x": 2})

    async with trio.open_nursery() as nursery:
        nursery.start_soon(with_plan)
        nursery.start_soon(without)
    assert str(results["with"].cause) == "mine"
    assert results["without"].error is None


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Raise("boom"), "'error' must be an exception"),
        (lambda: Raise(ValueError, attempt=0), "'attempt' must be"),
        (lambda: Delay(-1), "'seconds' must be"),
        (lambda: Delay(1, when="during"), "'when' must be"),
        (lambda: StopAfter(-1), "'events' must be"),
        (lambda: ExtraEvents([]), "non-empty list of dicts"),
        (lambda: FaultPlan({"": Hang()}), "a pattern must be"),
        (lambda: FaultPlan({"a": "hang"}), "must map to a fault"),
    ],
)
def test_bad_plans_are_rejected_when_built(build: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


def test_no_hook_and_no_cost_until_a_plan_is_used() -> None:
    code = (
        "import sys, runnable_trio, runnable_trio._task as t\n"
        "assert 'runnable_trio.testing' not in sys.modules\n"
        "import runnable_trio.testing as rt\n"
        "assert 'pytest' not in sys.modules, 'the toolkit imports pytest only in its plugin'\n"
        "assert t.fault_hook is None\n"
        "with rt.inject({}):\n    pass\n"
        "assert t.fault_hook is not None\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


async def test_everywhere_reaches_runs_started_outside_the_block() -> None:
    pipeline = AsyncPythonTask("double", double, returns=["y"]).as_async_pipeline()
    started = trio.Event()
    finished = trio.Event()
    results: list[Any] = []

    async def server() -> None:  # a task started before the block: not in its context
        await started.wait()
        results.append(await run_to_end(pipeline, parameters={"x": 1}))
        finished.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(server)
        await trio.testing.wait_all_tasks_blocked()
        with inject({"double": Raise(ValueError("everywhere"))}, everywhere=True):
            started.set()
            await finished.wait()
    assert str(results[0].cause) == "everywhere"
    with inject({"double": Raise(ValueError("scoped"))}):
        pass
    assert (await run_to_end(pipeline, parameters={"x": 1})).error is None
