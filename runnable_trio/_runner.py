"""The runner: running a pipeline's steps in order, and the policy shared by every step.

A step is run by :func:`run_step`, which wraps the step's own ``_execute`` with what every kind
of step shares: its record in the run log, lifecycle events, attempts under the retry policy,
the hard ``timeout`` (a cancel scope per attempt), ``on_failure`` and ``terminate_with_*``.
Composite steps run their branches with :func:`run_branch`, each in a child :class:`Scope`, in a
nursery of their own; this module opens no nursery, so the tree of tasks follows the pipeline.

Errors propagate as exceptions, unchanged: a task's ``ValueError`` is what its pipeline, the
enclosing Parallel and finally the run fail with. Where an exception was first recorded is
remembered by the run context, so the consumer's ``ExecutionFailedError`` can name the step.
Cancellation and ``KeyboardInterrupt`` are recorded as ``CANCELLED`` and never swallowed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from types import CodeType
from typing import TYPE_CHECKING

import attrs
import trio

from ._catalog import RunCatalog
from ._errors import StepTimeoutError, TerminatedWithFailure
from ._events import EventSink, Lifecycle
from ._retry import NO_RETRY, Retry
from ._runlog import (
    Attempt,
    BranchLog,
    RunLog,
    Status,
    StepLog,
    init_attempt,
    init_step_log,
    new_record,
    utc_now,
)
from ._scope import Scope
from ._store import RunLogStore

if TYPE_CHECKING:
    from ._pipeline import AsyncPipeline, BaseStep
    from ._telemetry import RunTelemetry, StepSpan

__all__ = [
    "STEP_FRAMES",
    "RunContext",
    "checkpoint_if_cancelled",
    "close_abandoned",
    "cut_short",
    "cut_short_branches",
    "join_path",
    "live_steps",
    "run_branch",
    "run_pipeline",
    "run_step",
]

logger = logging.getLogger("runnable_trio")

ON_FAILURE = "%on_failure"
_INFO = logging.INFO
_SUCCESS = Status.SUCCESS
#: Looked up once: an Enum member read from its class costs a call of the metaclass's
#: ``__getattr__`` hook, and a sweep reads these for every record of a left run.
_PROCESSING = Status.PROCESSING
_CANCELLED = Status.CANCELLED
#: The same, for the events a step with attribution sends as it starts and completes.
_STEP_STARTED = Lifecycle.STEP_STARTED
_STEP_COMPLETED = Lifecycle.STEP_COMPLETED
#: Read once: ``trio.lowlevel`` is an attribute lookup the interpreter does not specialise,
#: made on every step (and Map item: ``AsyncPythonTask.run_alone``) otherwise.
checkpoint_if_cancelled = trio.lowlevel.checkpoint_if_cancelled


def join_path(prefix: str, name: str) -> str:
    """The dotted path of ``name`` inside ``prefix`` (e.g. ``translate.spanish``)."""
    return f"{prefix}.{name}" if prefix else name


#: The attribute ``RunContext.note_failure`` marks a failure with: (run id, step path).
_ORIGIN = "_runnable_trio_origin"


@attrs.define(eq=False)
class RunContext:
    """What every step of one run shares."""

    run_id: str
    sink: EventSink
    store: RunLogStore
    run_log: RunLog
    log_level: int = logging.WARNING
    #: Steps of an earlier attempt at this run that succeeded, by path: reused, not re-run.
    reuse: Mapping[str, StepLog] = attrs.field(factory=dict)
    #: Steps of an earlier attempt that did not succeed, by path: their records get the new
    #: attempts.
    resume: Mapping[str, StepLog] = attrs.field(factory=dict)
    #: Where the run's catalog files and ``pickled`` returns go.
    catalog: RunCatalog = attrs.field(
        default=attrs.Factory(lambda self: RunCatalog.for_run(self.run_id), takes_self=True)
    )
    #: The paths of the steps running now, for the warning about a run that does not end
    #: after it was cancelled.
    running: set[str] = attrs.field(factory=set)
    #: The run's OpenTelemetry spans; None without a tracer provider (``_telemetry``).
    telemetry: RunTelemetry | None = None
    #: Whether the store's readers see the live record (``reads_live_record``, true where a
    #: store does not say), so a running step's record must be in the tree from its start:
    #: asked once per run, not once per Map item.
    live_records: bool = attrs.field(
        default=attrs.Factory(
            lambda self: getattr(self.store, "reads_live_record", True), takes_self=True
        )
    )

    #: Whether the store's ``step_finished`` is to be called (``wants_step_finished``, true
    #: where a store does not say): asked once per run, not once per step.
    step_reports: bool = attrs.field(
        default=attrs.Factory(
            lambda self: getattr(self.store, "wants_step_finished", True), takes_self=True
        )
    )
    #: The store's ``step_finished`` as a plain call, where it has one that never waits
    #: (``step_finished_now``, the file store's), else None: a step that succeeded is then
    #: reported without a coroutine made and awaited for it.
    finish_step_now: Callable[[RunLog, StepLog], None] | None = attrs.field(
        default=attrs.Factory(
            lambda self: getattr(self.store, "step_finished_now", None), takes_self=True
        )
    )

    def note_failure(self, exc: BaseException, path: str) -> None:
        """Remember the innermost step an exception was recorded at."""
        # Kept on the exception, not in the run: a failure a step handled, and the frames of
        # its traceback, are then freed as soon as nothing else holds them. Written through
        # ``vars()`` so neither a frozen exception class nor a custom ``__setattr__`` objects.
        # Only the first (innermost) step of this run counts; another run's mark is stale.
        found = vars(exc).get(_ORIGIN)
        if found is None or found[0] != self.run_id:
            vars(exc)[_ORIGIN] = (self.run_id, path)

    def failure_origin(self, exc: BaseException) -> str | None:
        """The path of the step ``exc`` was first recorded at in this run, if any."""
        found: tuple[str, str] | None = vars(exc).get(_ORIGIN)
        return found[1] if found is not None and found[0] == self.run_id else None

    def log(self, level: int, message: str, *args: object) -> None:
        if level >= self.log_level:
            logger.log(level, message, *args)


def close_abandoned(steps: Mapping[str, StepLog]) -> None:
    """Mark ``CANCELLED`` every record a dead writer left ``PROCESSING`` (a retry's start).

    A retry takes over the records of the attempt before it; one whose process died mid-step
    left that step, its branches and its attempt ``PROCESSING``. They were cut short: saying
    so now means no record stays ``PROCESSING`` whether or not the retry reaches them.
    """
    for log in steps.values():
        if log.status is Status.PROCESSING:
            log.status = Status.CANCELLED
        for attempt in log.attempts:
            if attempt.status is Status.PROCESSING:
                attempt.status = Status.CANCELLED
        for branch in log.branches.values():
            if branch.status is Status.PROCESSING:
                branch.status = Status.CANCELLED
            close_abandoned(branch.steps)


def cut_short(ctx: RunContext, steps: Mapping[str, StepLog]) -> None:
    """Mark ``CANCELLED`` every record in ``steps`` that a cancellation left ``PROCESSING``.

    A cancelled step's records are finalised here, in one sweep by whoever stops or ends the
    cancellation (a fan-out's nursery, a step's timeout, the run), not in handlers of each
    step the ``Cancelled`` passes through: leaving a run unwinds every live branch at once,
    and each handler entered costs every branch a few thousand instructions before the next
    branch's ``finally`` runs. Inner records first, as the unwinding reached them; each
    attempt cut short gets its end time. Only memory is changed: what the store holds is
    replaced whole by its next write, so a sweep cut short leaves a readable record.
    """
    sink = ctx.sink
    running = ctx.running
    for log in steps.values():
        if log.branches:
            cut_short_branches(ctx, log)
        if log.status is _PROCESSING:
            for attempt in log.attempts:
                if attempt.status is _PROCESSING:
                    attempt.end(_CANCELLED)
            log.status = _CANCELLED
            running.discard(log.path)
            if sink.attribution:
                sink.lifecycle_nowait(Lifecycle.STEP_CANCELLED, log.path, kind=log.kind)


def cut_short_branches(ctx: RunContext, log: StepLog) -> None:
    """:func:`cut_short` for the branches of ``log`` (a composite step's record)."""
    for branch in log.branches.values():
        if branch.status is _PROCESSING:
            cut_short(ctx, branch.steps)
            branch.status = _CANCELLED


def live_steps(running: set[str]) -> set[str]:
    """The paths of ``running`` whose step is still on a task's stack (a stuck run's warning).

    A cancelled step's path stays in ``running`` until the sweep that marks its record
    (:func:`cut_short`), which a fan-out does once all its branches have ended: while one
    branch does not end, its siblings that have are told apart by their tasks' stacks.
    Walked only when that warning is due. A step is recognised by its frame: one of
    :data:`STEP_FRAMES`' functions, holding this run's ``running`` and its own ``path``.
    """
    found: set[str] = set()
    tasks = [trio.lowlevel.current_root_task()]
    while tasks:
        task = tasks.pop()
        if task is None:
            continue
        for frame, _ in task.iter_await_frames():
            if frame.f_code in STEP_FRAMES and frame.f_locals.get("running") is running:
                found.add(frame.f_locals["path"])
        for nursery in task.child_nurseries:
            tasks.extend(nursery.child_tasks)
    return found & running


async def run_pipeline(
    ctx: RunContext, pipeline: AsyncPipeline, scope: Scope, prefix: str, steps: dict[str, StepLog]
) -> None:
    """Run the steps of ``pipeline`` in order in ``scope``, recording them into ``steps``.

    Raises:
        Exception: what the failing step raised (after its ``on_failure``, if any, failed).
    """
    for step in pipeline.steps:
        if not await run_step(ctx, step, scope, prefix, steps):
            return


async def run_branch(
    ctx: RunContext, pipeline: AsyncPipeline, scope: Scope, prefix: str, branch: BranchLog
) -> None:
    """Run a composite step's branch, keeping ``branch.status`` up to date."""
    # The loop of run_pipeline, not a call to it: a Map holds one such stack per item, and
    # every switch of a branch's task passes through each of its frames. By index: a tuple's
    # iterator is one more object per item for the cyclic GC to walk, a range's is not.
    records = branch.steps
    steps = pipeline.steps
    try:
        for index in range(len(steps)):
            if not await run_step(ctx, steps[index], scope, prefix, records):
                break
    except Exception:
        branch.status = Status.FAIL
        raise
    # A cancellation leaves the branch PROCESSING, for the sweep (cut_short) to mark.
    branch.status = Status.SUCCESS


async def run_step(
    ctx: RunContext, step: BaseStep, scope: Scope, prefix: str, steps: dict[str, StepLog]
) -> bool:
    """Run one step with the shared policy. Returns whether its pipeline goes on.

    Cancellation: the step's attempts are cancelled; its record says ``CANCELLED``.
    """
    # Steps whose functions never wait would otherwise run a whole pipeline without one
    # chance to notice a cancellation.
    await checkpoint_if_cancelled()
    name = step.name
    path = f"{prefix}.{name}" if prefix else name  # join_path, inline: a call per step
    # The earlier attempt's records exist only in a retry of a run: no lookup in an empty
    # dict per step otherwise.
    earlier = ctx.reuse.get(path) if ctx.reuse else None
    if earlier is not None:
        steps[name] = earlier
        scope.restore(earlier.assigned)
    else:
        log = ctx.resume.get(path) if ctx.resume else None
        if log is None:
            log = new_record(StepLog)  # StepLog(name, step.kind, path), cheaper (_runlog)
            init_step_log(log, name, step.kind, path)
        else:
            log.status = Status.PROCESSING
            log.assigned.clear()
        # From the moment the record is in the tree, every way out of this call finalises
        # it: a cancellation that arrives while step.started waits for room in a full buffer
        # included.
        steps[name] = log
        if ctx.log_level <= _INFO:  # inline: a call per step otherwise, whatever the level
            ctx.log(_INFO, "run %s: step %s started", ctx.run_id, path)
        running = ctx.running
        running.add(path)
        timeout = step.timeout
        telemetry = ctx.telemetry
        number = 0  # this run's attempts (a resumed record holds earlier ones too)
        try:
            # Lifecycle events exist only with attribution: without it, no call (and no
            # coroutine) per step for them.
            if ctx.sink.attribution:
                await ctx.sink.lifecycle(_STEP_STARTED, path, kind=step.kind)
            # The attempts under the retry policy, each in a cancel scope of its own when
            # the step has a timeout. Inline, not a coroutine of its own: a Map holds one
            # stack per item, and each frame is an object the cyclic GC walks and a
            # cancellation unwinds.
            while True:
                number += 1
                attempts = log.attempts  # log.new_attempt(), inline
                attempt = new_record(Attempt)  # Attempt(len(attempts) + 1), cheaper
                init_attempt(attempt, len(attempts) + 1)
                attempts.append(attempt)
                span = None
                if telemetry is not None:
                    span = telemetry.start_step(path, attempt.number, step.on_failure is not None)
                try:
                    if timeout is None:
                        execute = step._execute(ctx, scope, path, log)
                    else:
                        execute = _timed(ctx, step, scope, path, log, timeout)
                    await (execute if span is None else _traced(span, execute))
                except Exception as exc:
                    _end_attempt(attempt, span, Status.FAIL, exc)
                    # The policy is read only once an attempt failed: not every kind of
                    # step has one (a getattr's call per step otherwise).
                    policy: Retry = getattr(step, "retry", None) or NO_RETRY
                    if number >= policy.attempts:
                        raise
                    delay = policy.delay(number)
                    await ctx.sink.lifecycle(
                        Lifecycle.STEP_RETRYING,
                        path,
                        attempt=attempt.number,  # numbered as in the record and the span
                        error_type=type(exc).__name__,
                        error_message=str(exc),
                        delay=delay,
                    )
                    await trio.sleep(delay)
                # A cancellation leaves the attempt and the record PROCESSING: whoever stops
                # or ends it marks them (cut_short).
                else:
                    attempt.ended_at = utc_now()  # attempt.end(_SUCCESS), inline, as above:
                    attempt.status = _SUCCESS  # every step comes here
                    if span is not None:
                        span.end(_SUCCESS)
                    break
        except Exception as exc:
            try:
                log.status = Status.FAIL
                ctx.note_failure(exc, path)
                ctx.log(logging.INFO, "run %s: step %s failed: %r", ctx.run_id, path, exc)
                await ctx.sink.lifecycle(
                    Lifecycle.STEP_FAILED,
                    path,
                    kind=step.kind,
                    error_type=type(exc).__name__,
                    error_message=str(exc),
                )
                if ctx.step_reports:
                    await ctx.store.step_finished(ctx.run_log, log)
                if step.on_failure is None:
                    raise
                recovery = log.branches[ON_FAILURE] = BranchLog(ON_FAILURE)
                branch = run_branch(
                    ctx, step.on_failure, scope, join_path(path, ON_FAILURE), recovery
                )
                await (branch if telemetry is None else telemetry.recover(path, branch))
                return False  # recovered: the rest of this pipeline is skipped
            finally:
                running.discard(path)
        running.discard(path)
        log.status = _SUCCESS
        if ctx.log_level <= _INFO:
            ctx.log(_INFO, "run %s: step %s completed", ctx.run_id, path)
        if ctx.sink.attribution:
            await ctx.sink.lifecycle(_STEP_COMPLETED, path, kind=step.kind)
        if ctx.step_reports:
            if ctx.finish_step_now is None:
                await ctx.store.step_finished(ctx.run_log, log)
            else:
                ctx.finish_step_now(ctx.run_log, log)
    # What follows a success, a reused one's too: inline, not a call per step.
    if step.terminate_with_failure:
        raise TerminatedWithFailure(path)
    return not step.terminate_with_success


#: The code of the functions that run a step (their locals ``running`` and ``path`` say
#: which): run_step's, and any a higher layer adds (``AsyncPythonTask.run_alone``).
STEP_FRAMES: set[CodeType] = {run_step.__code__}


async def _timed(
    ctx: RunContext, step: BaseStep, scope: Scope, path: str, log: StepLog, seconds: float
) -> None:
    """An attempt in a cancel scope of its own: ``StepTimeoutError`` once ``seconds`` are up."""
    with trio.move_on_after(seconds) as cancel_scope:
        await step._execute(ctx, scope, path, log)
    if cancel_scope.cancelled_caught:
        cut_short_branches(ctx, log)  # what the timeout cut short inside the step
        raise StepTimeoutError(path, "timeout", seconds)


async def _traced(span: StepSpan, execute: Awaitable[None]) -> None:
    """Await an attempt whose span must end in its task, however the attempt ends."""
    try:
        await execute
    except Exception:
        raise  # ended by run_step, with the error
    except BaseException:
        span.end(Status.CANCELLED)
        raise


def _end_attempt(
    attempt: Attempt, span: StepSpan | None, status: Status, exc: BaseException | None = None
) -> None:
    attempt.end(status, exc)
    if span is not None:
        span.end(status, exc)
