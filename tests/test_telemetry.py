"""OpenTelemetry spans (``_telemetry``) on a Trio host, recorded with the in-memory exporter.

The asyncio side (compat/) is in ``test_telemetry_compat.py``.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.trace import StatusCode

from runnable_trio import (
    AsyncPipeline,
    AsyncPythonTask,
    ExecutionFailedError,
    Loop,
    Map,
    Parallel,
    Retry,
    RunLog,
    Status,
    StepLog,
)
from runnable_trio._telemetry import run_telemetry

from .helpers import run, run_failing, task
from .telemetry_support import Recorder, host_span_id, recording


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    yield from recording(monkeypatch)


Tree = tuple[tuple[str, int, str, "Tree"], ...]


def span_tree(spans: list[ReadableSpan], parent: int) -> Tree:
    """The step spans under span id ``parent``: (path, attempt, status, children), by path."""
    children = [s for s in spans if s.parent is not None and s.parent.span_id == parent]
    assert all(s.name == "runnable.step" for s in children)
    return tuple(
        sorted(
            (
                str(s.attributes["runnable.step"]),
                int(s.attributes["runnable.attempt"]),
                str(s.attributes["runnable.status"]),
                span_tree(spans, s.context.span_id),
            )
            for s in children
            if s.attributes is not None and s.context is not None
        )
    )


def log_tree(steps: dict[str, StepLog]) -> Tree:
    """The same shape read from a run log: an attempt per node, branches under the last."""
    nodes = []
    for step in steps.values():
        for attempt in step.attempts:
            children: Tree = ()
            if attempt is step.attempts[-1]:
                below = {
                    f"{key}/{name}": inner
                    for key, branch in step.branches.items()
                    for name, inner in branch.steps.items()
                }
                children = log_tree(below)
            nodes.append((step.path, attempt.number, str(attempt.status), children))
    return tuple(sorted(nodes))


def paths(tree: Tree) -> list[str]:
    return [path for path, *_ in tree]


async def both_started(arrived: list[str], everyone: trio.Event, name: str) -> None:
    """Wait until both branches of a Parallel are running: they run concurrently."""
    arrived.append(name)
    if len(arrived) % 2 == 0:
        everyone.set()
    await everyone.wait()


# Spans and their tree.


async def test_nested_run_span_tree_matches_the_step_tree(spans: Recorder) -> None:
    starts: dict[int, list[str]] = {}
    gates: dict[int, trio.Event] = {}

    async def side(item: int, i: int, side_name: str) -> None:
        # Both sides of one item's Parallel are alive at once: concurrent siblings.
        key = i * 10 + item
        await both_started(
            starts.setdefault(key, []), gates.setdefault(key, trio.Event()), side_name
        )

    async def left(item: int, i: int) -> None:
        await side(item, i, "left")

    async def right(item: int, i: int) -> None:
        await side(item, i, "right")

    async def check(i: int) -> bool:
        return i == 1

    parallel = Parallel("p", branches={"a": task("l", left), "b": task("r", right)})
    body = AsyncPipeline(
        [
            Map("m", "items", "item", AsyncPipeline([parallel])),
            AsyncPythonTask("check", check, returns=["stop"]),
        ]
    )
    pipeline = AsyncPipeline([Loop("loop", body, 5, "stop", "i")], name="nested")

    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("request"):
        host = host_span_id()
        log = await run(pipeline, parameters={"items": [0, 1]})

    finished = spans.finished()
    root = spans.run_span()
    assert root.parent is not None
    assert root.parent.span_id == host
    assert dict(root.attributes or {}) == {
        "runnable.run_id": log.run_id,
        "runnable.pipeline": "nested",
        "runnable.status": "SUCCESS",
    }
    assert root.context is not None
    tree = span_tree(finished, root.context.span_id)
    assert tree == log_tree(log.steps)
    # Spelled out: the loop's iterations, the map's items, the parallel's branches.
    ((loop_path, _, _, iterations),) = tree
    assert loop_path == "loop"
    assert paths(iterations) == ["loop.0.check", "loop.0.m", "loop.1.check", "loop.1.m"]
    items = iterations[1][3]
    assert paths(items) == ["loop.0.m.0.p", "loop.0.m.1.p"]
    assert paths(items[1][3]) == ["loop.0.m.1.p.a.l", "loop.0.m.1.p.b.r"]
    assert all(leaf[3] == () for leaf in items[1][3])
    # The host, the run, the loop, then per iteration: the map, per item (its parallel and
    # two tasks), the check.
    assert len(finished) == 1 + 1 + 1 + 2 * (1 + 2 * (1 + 2) + 1)
    assert not spans.tracker.open


async def test_attributes_of_a_step_span(spans: Recorder) -> None:
    async def noop() -> None:
        pass

    log = await run(task("only", noop), tag="t")
    (span,) = spans.named("runnable.step")
    assert dict(span.attributes or {}) == {
        "runnable.run_id": log.run_id,
        "runnable.pipeline": "only",  # as_async_pipeline() names it after the task
        "runnable.step": "only",
        "runnable.attempt": 1,
        "runnable.status": "SUCCESS",
    }
    assert span.status.status_code is StatusCode.UNSET
    assert span.kind is trace.SpanKind.INTERNAL


async def test_without_a_host_span_the_run_is_a_root(spans: Recorder) -> None:
    async def noop() -> None:
        pass

    async for _ in task("only", noop).execute_streaming():
        pass
    assert spans.run_span().parent is None


# Context out: the step's span is current in the task function.


async def test_user_spans_nest_under_the_step_span(spans: Recorder) -> None:
    seen: dict[str, Any] = {}

    async def coroutine() -> None:
        seen["coroutine"] = trace.get_current_span().get_span_context().span_id
        with trace.get_tracer("user").start_as_current_span("user work"):
            await trio.lowlevel.checkpoint()

    def in_a_thread() -> None:
        seen["thread"] = trace.get_current_span().get_span_context().span_id

    async def generator() -> Any:
        seen["generator"] = trace.get_current_span().get_span_context().span_id
        yield {"type": "chunk"}

    pipeline = AsyncPipeline(
        [
            AsyncPythonTask("coroutine", coroutine),
            AsyncPythonTask("thread", in_a_thread),
            AsyncPythonTask("generator", generator),
        ]
    )
    await run(pipeline)
    steps = spans.steps()
    for name in ("coroutine", "thread", "generator"):
        context = steps[name, 1].context
        assert context is not None
        assert seen[name] == context.span_id
    (user,) = spans.named("user work")
    assert user.parent is not None
    assert user.parent.span_id == seen["coroutine"]


async def test_the_callers_context_is_restored_after_the_run(spans: Recorder) -> None:
    async def noop() -> None:
        pass

    with trace.get_tracer("test").start_as_current_span("request"):
        before = trace.get_current_span()
        await run(task("only", noop))
        async for _ in task("only", noop).execute_streaming():
            assert trace.get_current_span() is before
        assert trace.get_current_span() is before


# Failure, retry, cancellation.


async def test_a_failure_is_recorded_on_its_spans(spans: Recorder) -> None:
    async def boom() -> None:
        raise ValueError("no good")

    await run_failing(AsyncPipeline([Parallel("p", branches={"a": task("boom", boom)})]))
    steps = spans.steps()
    for span in (steps["p.a.boom", 1], steps["p", 1], spans.run_span()):
        assert span.status.status_code is StatusCode.ERROR
        assert span.status.description == "ValueError: no good"
        assert span.attributes is not None
        assert span.attributes["runnable.status"] == "FAIL"
        (event,) = span.events
        assert event.name == "exception"
        assert event.attributes is not None
        assert event.attributes["exception.type"] == "ValueError"  # a builtin: no module
    assert not spans.tracker.open


async def test_each_retry_is_an_attempt_span(
    spans: Recorder, autojump_clock: trio.testing.MockClock
) -> None:
    calls = 0

    async def flaky() -> int:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionError(f"try {calls}")
        return calls

    pipeline = task("flaky", flaky, "n", retry=Retry(attempts=3, backoff=10))
    log = await run(pipeline)
    assert log.status is Status.SUCCESS
    steps = spans.steps()
    assert sorted(steps) == [("flaky", 1), ("flaky", 2), ("flaky", 3)]
    for number in (1, 2):
        failed = steps["flaky", number]
        assert failed.status.status_code is StatusCode.ERROR
        assert failed.status.description == f"ConnectionError: try {number}"
    assert steps["flaky", 3].status.status_code is StatusCode.UNSET
    assert steps["flaky", 3].attributes is not None
    assert steps["flaky", 3].attributes["runnable.status"] == "SUCCESS"
    # Siblings under the run, and the delay between attempts is in neither.
    root = spans.run_span().context
    assert root is not None
    for span in steps.values():
        assert span.parent is not None
        assert span.parent.span_id == root.span_id
    times = spans.tracker.times
    first, second = (steps["flaky", n].context for n in (1, 2))
    assert first is not None
    assert second is not None
    assert times[first.span_id][1] - times[first.span_id][0] < 1
    assert times[second.span_id][0] - times[first.span_id][1] >= 10


async def test_a_timeout_is_a_failure(
    spans: Recorder, autojump_clock: trio.testing.MockClock
) -> None:
    async def slow() -> None:
        await trio.sleep(100)

    await run_failing(task("slow", slow, timeout=1))
    span = spans.steps()["slow", 1]
    assert span.status.status_code is StatusCode.ERROR
    assert span.events[0].attributes is not None
    assert span.events[0].attributes["exception.type"] == "runnable_trio._errors.StepTimeoutError"


async def test_a_cancelled_step_is_marked_cancelled_not_failed(spans: Recorder) -> None:
    async def boom() -> None:
        await trio.testing.wait_all_tasks_blocked()
        raise ValueError("no good")

    async def hang() -> None:
        await trio.sleep_forever()

    pipeline = AsyncPipeline(
        [Parallel("p", branches={"a": task("boom", boom), "b": task("hang", hang)})]
    )
    await run_failing(pipeline)
    cancelled = spans.steps()["p.b.hang", 1]
    assert cancelled.attributes is not None
    assert cancelled.attributes["runnable.status"] == "CANCELLED"
    assert cancelled.status.status_code is StatusCode.UNSET
    assert cancelled.events == ()
    assert not spans.tracker.open


async def test_on_failure_steps_nest_under_the_failed_attempt(spans: Recorder) -> None:
    async def boom() -> None:
        raise ValueError("no good")

    async def recover() -> None:
        pass

    failing = AsyncPythonTask("boom", boom, on_failure=task("recover", recover))
    log = await run(AsyncPipeline([failing]))
    assert log.status is Status.SUCCESS
    steps = spans.steps()
    failed_context = steps["boom", 1].context
    recovery = steps["boom.%on_failure.recover", 1]
    assert failed_context is not None
    assert recovery.parent is not None
    assert recovery.parent.span_id == failed_context.span_id
    root = spans.run_span()
    assert root.context is not None
    assert span_tree(spans.finished(), root.context.span_id) == log_tree(log.steps)


# No span left open, whichever way the consumer leaves.


def hanging_run() -> tuple[AsyncPipeline, trio.Event]:
    running = trio.Event()

    async def events() -> Any:
        yield {"type": "first"}
        running.set()
        await trio.sleep_forever()

    hang = task("hang", events)
    pipeline = AsyncPipeline(
        [Parallel("p", branches={"a": hang, "b": hang}), AsyncPythonTask("never", events)]
    )
    return pipeline, running


class Leave(Exception):
    pass


async def leave_by_break_and_aclose(pipeline: AsyncPipeline) -> None:
    iterator = pipeline.execute_streaming()
    async for _ in iterator:
        break
    await iterator.aclose()


async def leave_by_break_without_aclose(pipeline: AsyncPipeline) -> None:
    async for _ in pipeline.execute_streaming():
        break


async def leave_by_consumer_error(pipeline: AsyncPipeline) -> None:
    with pytest.raises(Leave):
        async with pipeline.stream() as events:
            async for _ in events:
                raise Leave


async def leave_stream_block(pipeline: AsyncPipeline) -> None:
    async with pipeline.stream() as events:
        async for _ in events:
            break


async def leave_by_cancelled_consumer(pipeline: AsyncPipeline) -> None:
    with trio.CancelScope() as scope:
        async for _ in pipeline.execute_streaming():
            scope.cancel()
            await trio.lowlevel.checkpoint()


async def leave_by_cancelled_stream_consumer(pipeline: AsyncPipeline) -> None:
    with trio.CancelScope() as scope:
        async with pipeline.stream() as events:
            async for _ in events:
                scope.cancel()
                await trio.lowlevel.checkpoint()


@pytest.mark.parametrize(
    "leave",
    [
        leave_by_break_and_aclose,
        leave_by_break_without_aclose,
        leave_by_consumer_error,
        leave_stream_block,
        leave_by_cancelled_consumer,
        leave_by_cancelled_stream_consumer,
    ],
)
async def test_no_span_is_left_open(spans: Recorder, leave: Any) -> None:
    pipeline, _ = hanging_run()
    await leave(pipeline)
    with trio.fail_after(10):  # dropping the iterator cancels the run from a callback
        await spans.tracker.all_ended.wait()
    assert not spans.tracker.open
    assert spans.tracker.started == 4  # the run, the Parallel, its two branches' steps
    root = spans.run_span()
    assert root.attributes is not None
    assert root.attributes["runnable.status"] == "CANCELLED"
    assert root.status.status_code is StatusCode.UNSET
    for span in spans.named("runnable.step"):
        assert span.attributes is not None
        assert span.attributes["runnable.status"] == "CANCELLED"


async def test_a_failed_run_has_ended_its_spans_when_the_stream_ends(spans: Recorder) -> None:
    async def boom() -> None:
        raise ValueError("no good")

    async with task("boom", boom).stream() as events:
        with pytest.raises(ExecutionFailedError):
            async for _ in events:
                pass
        assert spans.tracker.started == 2
        assert not spans.tracker.open


# No tracing without a tracer provider; nothing imported without the package.


@pytest.mark.parametrize(
    "provider",
    [trace.ProxyTracerProvider, trace.NoOpTracerProvider],  # the API's default, its no-op
)
def test_no_spans_without_a_real_provider(monkeypatch: pytest.MonkeyPatch, provider: Any) -> None:
    monkeypatch.setattr(trace, "get_tracer_provider", provider)
    assert run_telemetry("id", "p") is None
    monkeypatch.setattr(trace, "get_tracer_provider", TracerProvider)
    telemetry = run_telemetry("id", "p")  # the SDK's: spans
    assert telemetry is not None
    telemetry.end_run(Status.SUCCESS, None)


async def test_the_no_op_provider_leaves_the_callers_span_current(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(trace, "get_tracer_provider", trace.NoOpTracerProvider)
    seen: list[trace.Span] = []

    async def look() -> None:
        seen.append(trace.get_current_span())

    recording = TracerProvider()
    with recording.get_tracer("test").start_as_current_span("request") as request:
        log: RunLog = await run(task("look", look))
    assert log.status is Status.SUCCESS
    assert seen == [request]


def test_import_and_run_do_not_import_opentelemetry() -> None:
    code = (
        "import sys, trio\n"
        "import runnable_trio as rt\n"
        "async def f(): return 1\n"
        "async def main():\n"
        "    async for _ in rt.AsyncPythonTask('f', f).as_async_pipeline().execute_streaming():\n"
        "        pass\n"
        "trio.run(main)\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]"


def test_the_example_prints_its_spans_to_the_console(tmp_path: Any) -> None:
    example = Path(__file__).resolve().parent.parent / "examples" / "telemetry.py"
    done = subprocess.run(
        [sys.executable, str(example)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=tmp_path,
    )
    spans = [line.split()[1:4] for line in done.stdout.splitlines() if line.startswith("span:")]
    assert ["runnable.run", "weather", "SUCCESS"] in spans
    assert ["runnable.step", "gather.forecasts.cities.2.forecast", "SUCCESS"] in spans
    assert ["fetch", "Rio"] in [span[:2] for span in spans]
    assert spans[-1][0] == "request"  # the run's parent, ended last


async def test_a_retried_run_spans_what_runs_again(spans: Recorder) -> None:
    from runnable_trio import retry_stream

    calls = 0

    async def first() -> int:
        return 1

    async def flaky(x: int) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("down")
        return x

    pipeline = AsyncPipeline(
        [AsyncPythonTask("first", first, returns=["x"]), AsyncPythonTask("flaky", flaky)]
    )
    await run_failing(pipeline, run_id="r1")
    spans.exporter.clear()
    async with retry_stream(pipeline, "r1") as events:
        async for _ in events:
            pass
    # The step that succeeded is reused, not run: no span. The other's attempt numbers go on.
    assert sorted(spans.steps()) == [("flaky", 2)]
    root = spans.run_span()
    assert root.attributes is not None
    assert root.attributes["runnable.run_id"] == "r1"
    assert root.attributes["runnable.status"] == "SUCCESS"
