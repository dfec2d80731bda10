"""OpenTelemetry: every run a ``runnable.run`` span, every step attempt a ``runnable.step`` span.

runnable_trio configures nothing: the application sets up its tracer provider (here, when
run as a script, one printing each span to the console as it ends; in production an OTLP
exporter, see the README) and the library's spans go wherever the provider sends them. The
span current where the run starts (``request`` here, an HTTP request's span in a web
application) is the run's parent; inside a task function the step's span is current, so the
function's own spans (``fetch``) nest under it. Without a provider, it runs just the same and
makes no spans.

Needs ``pip install 'runnable_trio[otel]' opentelemetry-sdk``. Run it with
``python examples/telemetry.py``: the console exporter prints each span as it ends (so
children before their parents, between the events), with its step path and status.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import trio
from opentelemetry import trace

from runnable_trio import AsyncPipeline, AsyncPythonTask, Map, Parallel

tracer = trace.get_tracer("examples.telemetry")


async def forecast(city: str) -> AsyncIterator[dict[str, Any]]:
    with tracer.start_as_current_span("fetch") as span:  # a child of this step's span
        span.set_attribute("city", city)
        await trio.sleep(0.01 * len(city))  # stands for an HTTP call
    yield {"type": "done", "forecast": f"{city}: sunny"}


async def warnings(cities: list[str]) -> list[str]:
    await trio.sleep(0.01)
    return [f"{city}: no warnings" for city in cities]


async def main() -> None:
    by_city = AsyncPythonTask(name="forecast", function=forecast, returns=["forecast"])
    pipeline = AsyncPipeline(
        name="weather",
        steps=[
            Parallel(
                name="gather",
                branches={
                    "forecasts": Map(
                        name="cities",
                        iterate_on="cities",
                        iterate_as="city",
                        branch=by_city.as_async_pipeline(),
                    ).as_async_pipeline(),
                    "warnings": AsyncPythonTask(
                        name="warnings", function=warnings, returns=["alerts"]
                    ).as_async_pipeline(),
                },
            )
        ],
    )
    # Your own span (or a web framework's request span) is the run's parent.
    with tracer.start_as_current_span("request"):
        run = pipeline.execute_streaming(parameters={"cities": ["Lyon", "Oslo", "Rio"]})
        async for event in run:
            print("event:", event)
    print("forecasts:", run.run_log.parameters_out["forecast"])


def print_spans_to_the_console() -> None:
    """The application's tracing set-up: here, one line per span on the console."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

    def one_line(span: ReadableSpan) -> str:
        attributes = span.attributes or {}
        where = attributes.get("runnable.step") or attributes.get("runnable.pipeline") or ""
        where = where or attributes.get("city", "")
        status = attributes.get("runnable.status", "")
        elapsed = ((span.end_time or 0) - (span.start_time or 0)) / 1e6
        return f"span: {span.name:<14} {where!s:<36} {status!s:<9} {elapsed:6.1f} ms\n"

    provider = TracerProvider(resource=Resource.create({"service.name": "weather"}))
    provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(formatter=one_line)))
    trace.set_tracer_provider(provider)


if __name__ == "__main__":
    print_spans_to_the_console()
    trio.run(main)
