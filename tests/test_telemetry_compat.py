"""OpenTelemetry through compat/: the host's context carried into the run, and back out.

On an asyncio host (plain sync tests, each running its own loop), an instrumented ASGI app
included; and an asyncio-flavoured function on a Trio host, through trio-asyncio.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any

import pytest
from opentelemetry import trace

from .telemetry_support import Recorder, host_span_id, recording


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    yield from recording(monkeypatch)


def run_asyncio(main: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    # An explicit factory: importing trio-asyncio (a test here does) changes asyncio's
    # default loop for the rest of the process.
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
