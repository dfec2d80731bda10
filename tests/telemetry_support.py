"""What the OpenTelemetry tests share: an SDK tracer provider recording every span."""

from __future__ import annotations

import math
from collections.abc import Iterator

import attrs
import pytest
import trio
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


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


def recording(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    """A test's own SDK tracer provider, installed as the global one for the test.

    Patched rather than set: the global provider can be set only once per process, and other
    test modules must run without tracing.
    """
    exporter = InMemorySpanExporter()
    tracker = OpenSpans()
    provider = TracerProvider()
    provider.add_span_processor(tracker)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    yield Recorder(exporter, tracker, provider)
    provider.shutdown()


def host_span_id() -> int:
    return trace.get_current_span().get_span_context().span_id
