"""OpenTelemetry spans (``_telemetry``): recorded with the SDK's in-memory exporter.

Each test gets its own SDK tracer provider, installed by patching
``opentelemetry.trace.get_tracer_provider`` (the global provider can be set only once per
process, and other test modules must run without tracing).
"""

from __future__ import annotations

import asyncio
import math
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
import trio.testing
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
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


def trio_time() -> float:
    """Trio's clock, or NaN outside Trio (a span on an asyncio host)."""
    try:
        return trio.current_time()
    except RuntimeError:
        return math.nan


class OpenSpans(SpanProcessor):
    """The spans started and not yet ended; ``all_ended`` is set when none is left open."""

    def __init__(self) -> None:
        self.open: dict[int, str] = {}
        self.started = 0
        #: Trio's clock (virtual under autojump_clock) when each span started and ended.
        self.times: dict[int, list[float]] = {}
        self.all_ended = trio.Event()

    def on_start(self, span: Span, parent_context: otel_context.Context | None = None) -> None:
        self.started += 1
        self.open[span.get_span_context().span_id] = span.name
        self.times[span.get_span_context().span_id] = [trio_time()]

    def on_end(self, span: ReadableSpan) -> None:
        assert span.context is not None
        del self.open[span.context.span_id]
        self.times[span.context.span_id].append(trio_time())
        if not self.open:
            self.all_ended.set()


@attrs.define
class Recorder:
    exporter: InMemorySpanExporter
    tracker: OpenSpans
    provider: TracerProvider

    def finished(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        return [span for span in self.finished() if span.name == name]

    def steps(self) -> dict[tuple[str, int], ReadableSpan]:
        """The step spans by (path, attempt)."""
        return {
            (str(span.attributes["runnable.step"]), int(span.attributes["runnable.attempt"])): span
            for span in self.named("runnable.step")
            if span.attributes is not None
        }

    def run_span(self) -> ReadableSpan:
        (span,) = self.named("runnable.run")
        return span


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    exporter = InMemorySpanExporter()
    tracker = OpenSpans()
    provider = TracerProvider()
    provider.add_span_processor(tracker)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    yield Recorder(exporter, tracker, provider)
    provider.shutdown()


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


def host_span_id() -> int:
    return trace.get_current_span().get_span_context().span_id


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


def test_no_spans_without_a_real_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    assert run_telemetry("id", "p") is None  # the API's default: the proxy provider
    monkeypatch.setattr(trace, "get_tracer_provider", trace.NoOpTracerProvider)
    assert run_telemetry("id", "p") is None


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


# Through compat, on an asyncio host: the guest run carries the host task's context.


def run_asyncio(main: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    # An explicit factory: importing trio-asyncio elsewhere changes asyncio's default loop.
    with asyncio.Runner(loop_factory=asyncio.SelectorEventLoop) as runner:
        return runner.run(main())


def test_an_asyncio_hosts_span_is_the_runs_parent(spans: Recorder) -> None:
    import runnable

    seen: dict[str, int] = {}

    async def on_host(x: int) -> int:
        await asyncio.sleep(0)  # an asyncio-flavoured function, run on the host loop
        seen["current"] = trace.get_current_span().get_span_context().span_id
        with trace.get_tracer("user").start_as_current_span("user on asyncio"):
            await asyncio.sleep(0)
        return x + 1

    pipeline = runnable.AsyncPipeline(
        steps=[runnable.AsyncPythonTask(name="on_host", function=on_host, returns=["x"])]
    )

    async def main() -> int:
        with trace.get_tracer("test").start_as_current_span("request"):
            async for _ in pipeline.execute_streaming(parameters={"x": 1}):
                pass
            return host_span_id()

    host = run_asyncio(main)
    root = spans.run_span()
    assert root.parent is not None
    assert root.parent.span_id == host
    step = spans.steps()["on_host", 1]
    assert root.context is not None
    assert step.context is not None
    assert step.parent is not None
    assert step.parent.span_id == root.context.span_id
    assert seen["current"] == step.context.span_id
    (user,) = spans.named("user on asyncio")
    assert user.parent is not None
    assert user.parent.span_id == step.context.span_id
    assert not spans.tracker.open


def test_concurrent_asyncio_requests_parent_their_own_runs(spans: Recorder) -> None:
    # The streams of one loop share one guest run: each run still has its own request's span
    # as parent, never the other's.
    import runnable

    both = asyncio.Event()
    arrived: list[int] = []

    async def meet(n: int) -> int:
        arrived.append(n)
        if len(arrived) == 2:
            both.set()
        await both.wait()
        return n

    pipeline = runnable.AsyncPipeline(
        steps=[runnable.AsyncPythonTask(name="meet", function=meet, returns=["n"])]
    )

    async def request(n: int) -> tuple[str, int]:
        with trace.get_tracer("test").start_as_current_span(f"request {n}"):
            run = pipeline.execute_streaming(parameters={"n": n})
            async for _ in run:
                pass
            return run.run_id, host_span_id()

    async def main() -> list[tuple[str, int]]:
        async with asyncio.timeout(30):
            return list(await asyncio.gather(request(1), request(2)))

    requests = dict(run_asyncio(main))
    runs = spans.named("runnable.run")
    assert len(runs) == 2
    for span in runs:
        assert span.attributes is not None
        assert span.parent is not None
        assert span.parent.span_id == requests[str(span.attributes["runnable.run_id"])]


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


async def test_an_asyncio_function_on_a_trio_host_sees_the_step_span(spans: Recorder) -> None:
    import runnable
    import trio_asyncio  # type: ignore[import-untyped]

    seen: list[int] = []

    async def on_asyncio() -> None:
        await asyncio.sleep(0)
        seen.append(host_span_id())

    pipeline = runnable.AsyncPipeline(
        steps=[runnable.AsyncPythonTask(name="on_asyncio", function=on_asyncio)]
    )
    with trace.get_tracer("test").start_as_current_span("request"):
        host = host_span_id()
        async with trio_asyncio.open_loop():
            async for _ in pipeline.execute_streaming():
                pass
    root = spans.run_span()
    assert root.parent is not None
    assert root.parent.span_id == host
    step = spans.steps()["on_asyncio", 1].context
    assert step is not None
    assert seen == [step.span_id]


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


def test_an_instrumented_asgi_requests_span_is_the_runs_parent(spans: Recorder) -> None:
    # FastAPI behind OpenTelemetry's ASGI middleware (what FastAPIInstrumentor installs),
    # streaming a compat run: the request's server span is the run's parent.
    import httpx
    import runnable
    from fastapi import FastAPI
    from fastapi.responses import StreamingResponse
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    from runnable_trio import SSE_MEDIA_TYPE, SSEStream

    async def answer(prompt: str) -> AsyncIterator[dict[str, Any]]:
        await asyncio.sleep(0)
        yield {"type": "chunk", "text": prompt.upper()}

    pipeline = runnable.AsyncPythonTask(name="answer", function=answer).as_async_pipeline()
    app = FastAPI()

    @app.get("/chat")
    async def chat(prompt: str) -> StreamingResponse:
        run = pipeline.execute_streaming(parameters={"prompt": prompt})
        return StreamingResponse(SSEStream(run), media_type=SSE_MEDIA_TYPE)

    traced = OpenTelemetryMiddleware(app, tracer_provider=spans.provider)

    async def main() -> str:
        transport = httpx.ASGITransport(app=traced)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.get("/chat", params={"prompt": "hi"})
        return response.text

    assert "HI" in run_asyncio(main)
    # The middleware's server span (recent FastAPI versions add one of their own too).
    servers = {
        s.context.span_id: s
        for s in spans.finished()
        if s.kind is trace.SpanKind.SERVER and s.context is not None
    }
    root = spans.run_span()
    assert root.parent is not None
    assert servers[root.parent.span_id].name == "GET /chat"
    assert not spans.tracker.open
