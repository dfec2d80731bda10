"""OpenTelemetry: a ``runnable.run`` span per run, a ``runnable.step`` span per step attempt.

Nothing here runs at import, and nothing imports ``opentelemetry`` unless the application
already has. Whether a run makes spans is decided once, when it starts
(:func:`run_telemetry`): only when ``opentelemetry.trace`` is in ``sys.modules`` (configuring
a tracer provider, by hand or through ``opentelemetry-instrument``, imports it) and the
global tracer provider is a real one, not the API's default proxy or its no-op provider.
Otherwise the run's ``RunContext.telemetry`` is ``None`` and each step attempt costs one
``is None`` check.

Nesting follows the task tree, through contextvars. The run's span is made current in the
run's task, whose context is a copy of the caller's (``stream()`` starts it with
``start_soon``; ``execute_streaming()`` gives its system task a copy of the caller's context;
compat spawns its guest task from the asyncio consumer's context), so a span current where the
run is started is the run's parent. Each attempt's span is made current in the task running
the step while the attempt runs: a composite's branches are spawned (a Parallel, a Map) or
run (a Loop, a Conditional) while its span is current, so their steps are its children, and
concurrent branches are siblings. The user's function runs in that task (a plain ``def`` in a
worker thread, which Trio gives a copy of the task's context), so its own spans and those of
instrumented libraries nest under the step's.

Every span is ended exactly once, on each way out of its attempt or run, before the run's
stream ends: a failure records the exception and sets the status ``ERROR``; a cancellation
sets ``runnable.status`` to ``CANCELLED`` and leaves the status unset (not an error). A retry
is a new attempt span; the retry delay belongs to neither. An ``on_failure`` branch's steps
are children of the failed attempt's span, as its record sits inside the failed step's.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from contextvars import Token

    from opentelemetry.context import Context
    from opentelemetry.trace import Span, Tracer, TracerProvider
    from opentelemetry.util.types import AttributeValue

    from ._runlog import Status

__all__ = [
    "ATTEMPT",
    "PIPELINE",
    "RUN_ID",
    "RUN_SPAN",
    "STATUS",
    "STEP",
    "STEP_SPAN",
    "RunTelemetry",
    "StepSpan",
    "run_telemetry",
]

# Public names (README, "Telemetry"): dashboards and outside tests query them; never rename.
RUN_SPAN = "runnable.run"
STEP_SPAN = "runnable.step"
RUN_ID = "runnable.run_id"
PIPELINE = "runnable.pipeline"
STEP = "runnable.step"
ATTEMPT = "runnable.attempt"
STATUS = "runnable.status"

INSTRUMENTATION_NAME = "runnable_trio"

# The tracer of the last provider seen: a provider is set once per process, so this is
# looked up once, not per run.
_tracer_cache: tuple[TracerProvider, Tracer] | None = None


def run_telemetry(run_id: str, pipeline: str) -> RunTelemetry | None:
    """Start the span of a run, current in the calling task; ``None`` if there is no tracing.

    The caller must end it with :meth:`RunTelemetry.end_run`, in the same task.
    """
    if "opentelemetry.trace" not in sys.modules:
        return None
    from opentelemetry import trace  # imported already (above): a dictionary look-up

    provider = trace.get_tracer_provider()
    if isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider)):
        return None
    return RunTelemetry(_tracer(provider), run_id, pipeline)


def _tracer(provider: TracerProvider) -> Tracer:
    global _tracer_cache
    if _tracer_cache is None or _tracer_cache[0] is not provider:
        from importlib.metadata import PackageNotFoundError, version

        try:
            ours = version("runnable_trio")
        except PackageNotFoundError:  # running from a source tree
            ours = None
        _tracer_cache = provider, provider.get_tracer(INSTRUMENTATION_NAME, ours)
    return _tracer_cache[1]


class RunTelemetry:
    """The spans of one run: its own, current in the run's task, and its steps'."""

    __slots__ = (
        "_attach",
        "_attributes",
        "_detach",
        "_error",
        "_in_context",
        "_recoverable",
        "_run_span",
        "_run_token",
        "_status",
        "_tracer",
    )

    def __init__(self, tracer: Tracer, run_id: str, pipeline: str) -> None:
        from opentelemetry import context, trace

        # Bound once per run: a step's span then costs no module attribute look-ups.
        self._attach = context.attach
        self._detach = context.detach
        self._in_context = trace.set_span_in_context
        self._status = trace.Status
        self._error = trace.StatusCode.ERROR
        self._tracer = tracer
        self._attributes: dict[str, AttributeValue] = {RUN_ID: run_id, PIPELINE: pipeline}
        #: The failed attempt's span of each step whose on_failure branch is about to run.
        self._recoverable: dict[str, Span] = {}
        self._run_span = tracer.start_span(RUN_SPAN, attributes=self._attributes)
        self._run_token: Token[Context] = self._attach(self._in_context(self._run_span))

    def end_run(self, status: Status, error: BaseException | None) -> None:
        """End the run's span (in the task that started it) with the run's final status."""
        self._detach(self._run_token)
        self.finish(self._run_span, status, error)

    def start_step(self, path: str, attempt: int, recoverable: bool) -> StepSpan:
        """Start an attempt's span, current in the calling task until :meth:`StepSpan.end`.

        Args:
            path: the step's path.
            attempt: the attempt's number (1 for the first).
            recoverable: the step has an ``on_failure`` branch, to be nested under this
                span if the attempt fails.
        """
        span = self._tracer.start_span(
            STEP_SPAN, attributes={**self._attributes, STEP: path, ATTEMPT: attempt}
        )
        token = self._attach(self._in_context(span))
        return StepSpan(self, span, token, path if recoverable else None)

    async def recover(self, path: str, branch: Awaitable[None]) -> None:
        """Await ``branch`` (a step's ``on_failure`` branch) under its failed attempt's span."""
        span = self._recoverable.pop(path, None)
        if span is None:
            await branch
            return
        token = self._attach(self._in_context(span))
        try:
            await branch
        finally:
            self._detach(token)

    def finish(self, span: Span, status: Status, error: BaseException | None) -> None:
        span.set_attribute(STATUS, status.value)
        if error is not None:
            span.record_exception(error)
            span.set_status(self._status(self._error, f"{type(error).__name__}: {error}"))
        span.end()


class StepSpan:
    """One attempt's span, current in the task running the attempt."""

    __slots__ = ("_recover_as", "_run", "_span", "_token")

    def __init__(
        self, run: RunTelemetry, span: Span, token: Token[Context], recover_as: str | None
    ) -> None:
        self._run = run
        self._span = span
        self._token = token
        self._recover_as = recover_as

    def end(self, status: Status, error: BaseException | None = None) -> None:
        """End the attempt's span with its status; ``error`` is what failed it, if anything."""
        run = self._run
        run._detach(self._token)
        run.finish(self._span, status, error)
        if self._recover_as is not None:
            if error is None:
                run._recoverable.pop(self._recover_as, None)  # an earlier attempt's
            else:
                run._recoverable[self._recover_as] = self._span
