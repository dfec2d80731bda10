"""What the composite steps share: their base class, build-time checks, fan-out and fan-in.

Fan-out runs one branch per task in a nursery opened inside the composite step, so the task tree
follows the pipeline and leaving a run cancels every branch at once. Each branch starts from a
child :class:`Scope` (its parent's values plus what is bound for it) and gives back the names
it assigned; the composite decides how those merge into its own scope. A branch reads its
parent's values until it assigns a name, and then takes a shallow copy, one dict per branch
and no more: values are shared, so a branch that mutates a list in place changes it for its
siblings, while assigning a name never does.

Failure policy. With ``fail_fast`` (the default) the first failing branch cancels its siblings:
trio's nursery does exactly that. Without it, a branch's ``Exception`` is kept and the others
run on; the step fails once all have ended. Either way, one failed branch raises its exception
unchanged, and several raise one ``ExceptionGroup`` of their exceptions (a nested composite's
group stays a member, never flattened), so ``ExecutionFailedError.__cause__`` is the real story.
``Cancelled``, ``KeyboardInterrupt`` and ``SystemExit`` are never collected.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs
import trio

from ._groups import first_if_all_cancelled, leaves, raise_without_context, single_member
from ._pipeline import AsyncPipeline, BaseStep
from ._runlog import BranchLog, Status, new_record
from ._runner import cut_short_branches, run_branch
from ._validators import definition_error

if TYPE_CHECKING:
    from ._runlog import StepLog
    from ._runner import RunContext
    from ._scope import Scope

__all__ = [
    "CompositeStep",
    "branches_converter",
    "check_branches",
    "check_name_field",
    "check_pipeline",
    "check_positive_int",
    "fan_out",
    "names_assigned",
]


@attrs.frozen(kw_only=True)
class CompositeStep(BaseStep):
    """A step that runs pipelines of its own (its branches)."""

    def pipelines(self) -> Iterable[AsyncPipeline]:
        """Every pipeline this step may run as a branch."""
        raise NotImplementedError

    def assigned_names(self) -> tuple[str, ...]:
        """What its branches can assign, in order of first appearance."""
        names: dict[str, None] = {}
        for branch in self.pipelines():
            names.update(dict.fromkeys(names_assigned(branch)))
        return tuple(names)


def names_assigned(pipeline: AsyncPipeline) -> tuple[str, ...]:
    """The names ``pipeline`` can assign, in order of first appearance.

    A task assigns its ``returns``; a composite step what its branches can assign; a step's
    ``on_failure`` pipeline what it can assign. Map uses this to give a list for every name,
    even when no item assigned it (an empty list of items gives empty lists).
    """
    names: dict[str, None] = {}
    for step in pipeline.steps:
        names.update(dict.fromkeys(step.assigned_names()))
        if step.on_failure is not None:
            names.update(dict.fromkeys(names_assigned(step.on_failure)))
    return tuple(names)


# Build-time checks.


def branches_converter(value: object) -> object:
    # A private copy, so changing the caller's dict later cannot change the step; anything
    # else is kept for the validator to name.
    return dict(value) if isinstance(value, Mapping) else value


def check_branches(instance: BaseStep, attribute: attrs.Attribute[Any], value: object) -> None:
    """``branches``: a non-empty dict of path-safe str keys to ``AsyncPipeline``."""
    expected = "a non-empty dict of branch names to AsyncPipeline"
    if not isinstance(value, dict) or not value:
        raise definition_error(instance, attribute.name, expected, value)
    for key, pipeline in value.items():
        if not isinstance(key, str) or not key or "." in key or "%" in key:
            raise definition_error(
                instance,
                attribute.name,
                "keyed by non-empty str free of '.' and '%' (they separate step paths)",
                key,
            )
        if not isinstance(pipeline, AsyncPipeline):
            raise definition_error(
                instance,
                attribute.name,
                f"a dict of AsyncPipeline (use step.as_async_pipeline() for one step), but "
                f"branch {key!r} is not",
                pipeline,
            )


def check_pipeline(instance: BaseStep, attribute: attrs.Attribute[Any], value: object) -> None:
    """A field holding one branch pipeline."""
    if not isinstance(value, AsyncPipeline):
        raise definition_error(
            instance,
            attribute.name,
            "an AsyncPipeline (use step.as_async_pipeline() for one step)",
            value,
        )


def check_name_field(instance: BaseStep, attribute: attrs.Attribute[Any], value: object) -> None:
    """A field holding a parameter name."""
    if not isinstance(value, str) or not value:
        raise definition_error(
            instance, attribute.name, "a non-empty str (a parameter name)", value
        )


def check_positive_int(instance: BaseStep, attribute: attrs.Attribute[Any], value: object) -> None:
    """An int >= 1; ``None`` is accepted where the field's default is ``None``."""
    if value is None and attribute.default is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        expected = "an int >= 1" + (" or None" if attribute.default is None else "")
        raise definition_error(instance, attribute.name, expected, value)


# Fan-out and fan-in.

#: Branches spawned before the spawning task yields to the scheduler, which runs them first.
#: Where a branch hands its work to another event loop (compat's asyncio tasks, on the loop
#: Trio is a guest of), that work starts only when Trio yields to the loop: spawned in one go,
#: every branch of a wide fan-out would start its work at once, after the last was spawned, and
#: their completions would queue up at the end rather than spread out as they do on Trio
#: (W8: Parallel of 1,000 sleeping branches under asyncio.run).
SPAWN_CHUNK = 32

_PROCESSING = Status.PROCESSING


async def fan_out(
    ctx: RunContext,
    log: StepLog,
    path: str,
    branches: Iterable[tuple[str, AsyncPipeline, Scope]],
    *,
    fail_fast: bool,
    max_concurrency: int | None = None,
) -> list[dict[str, Any]]:
    """Run ``branches`` concurrently, each recorded as ``log.branches[key]``.

    ``branches`` is consumed lazily, one item as each branch starts, so a Map over many items
    makes each child scope only when its item starts.

    Args:
        ctx: the run.
        log: the composite step's record.
        path: the composite step's path; a branch's steps live under ``path.key``.
        branches: ``(key, pipeline, scope)`` for each branch, in order.
        fail_fast: cancel the other branches at the first failure (else let them finish).
        max_concurrency: at most this many branches running at once (None: no limit).

    Returns:
        The names each branch assigned, in the order the branches were given.

    Raises:
        Exception: the one failed branch's exception, or an ``ExceptionGroup`` of several.

    Cancellation: every running branch is cancelled and no further branch starts.
    """
    # Each branch's assigned names, not its Scope: a finished branch's scope (its copy of
    # the parent's values, if it made one) is freed with its task, not kept until every
    # branch has ended.
    assigned: list[dict[str, Any]] = []
    failures: list[tuple[int, Exception]] = []
    limiter = None if max_concurrency is None else trio.CapacityLimiter(max_concurrency)
    # The plain fail-fast case runs run_branch itself as the task: a wrapper would cost a
    # coroutine frame per branch, and every context switch of a branch passes through each
    # frame of its stack.
    wrapped = limiter is not None or not fail_fast
    # A branch that is one plain task runs as that task's run_alone, which does what
    # run_branch would in one frame, where the run asks for nothing it leaves out.
    alone_here = (
        not ctx.sink.attribution
        and ctx.telemetry is None
        and not ctx.reuse
        and not ctx.resume
        and ctx.log_level > logging.INFO
    )
    runner: Runner = run_branch
    last: AsyncPipeline | None = None  # a Map's items share one pipeline: looked at once
    records = log.branches

    async def run_wrapped(
        index: int,
        pipeline: AsyncPipeline,
        scope: Scope,
        prefix: str,
        record: BranchLog,
        runner: Runner,
    ) -> None:
        try:
            await runner(ctx, pipeline, scope, prefix, record)
        except Exception as exc:
            if fail_fast:
                raise
            failures.append((index, exc))
        finally:
            if limiter is not None:
                limiter.release_on_behalf_of(index)

    try:
        async with trio.open_nursery() as nursery:
            for index, (key, pipeline, scope) in enumerate(branches):
                if limiter is not None:
                    # Waiting here, not in the branch, keeps at most max_concurrency tasks
                    # alive and starts items in input order.
                    await limiter.acquire_on_behalf_of(index)
                # BranchLog(key), its fields set here: the __init__ attrs wrote is a frame
                # per branch (see _runlog; tests/test_inline_records.py checks them).
                record = new_record(BranchLog)
                record.name = key
                record.status = _PROCESSING
                record.steps = {}
                records[key] = record
                prefix = f"{path}.{key}" if path else key  # join_path, inline: one per branch
                assigned.append(scope.assigned)
                if pipeline is not last:
                    # What runs a branch of this pipeline: its one step's run_alone where the
                    # step has one and may (runs_alone, a plain task's), else run_branch.
                    # Inline: a Parallel's branches are pipelines of their own, one each.
                    last = pipeline
                    runner = run_branch
                    steps = pipeline.steps
                    if alone_here and len(steps) == 1 and getattr(steps[0], "runs_alone", False):
                        runner = steps[0].run_alone  # type: ignore[attr-defined]
                if wrapped:
                    nursery.start_soon(
                        run_wrapped, index, pipeline, scope, prefix, record, runner, name=prefix
                    )
                else:
                    nursery.start_soon(runner, ctx, pipeline, scope, prefix, record, name=prefix)
                if limiter is None and index % SPAWN_CHUNK == SPAWN_CHUNK - 1:
                    # Not a cancellation point: every branch is spawned (and recorded).
                    await trio.lowlevel.cancel_shielded_checkpoint()
    except BaseException as exc:
        # The branches a failure or a cancellation cut short are marked here, all at once,
        # once every branch has ended: their steps' handlers leave them to this sweep.
        cut_short_branches(ctx, log)
        if isinstance(exc, BaseExceptionGroup):
            raise_without_context(_branch_failure(exc, path))  # see _groups: no cycle
        raise
    if failures:
        failures.sort(key=lambda failure: failure[0])
        raise_without_context(_collected([exc for _, exc in failures], path))
    return assigned


Runner = Callable[["RunContext", AsyncPipeline, "Scope", str, BranchLog], Coroutine[Any, Any, None]]


def _branch_failure(group: BaseExceptionGroup[BaseException], path: str) -> BaseException:
    """What a fan-out nursery's group means, to raise: one failure, several, or a
    cancellation."""
    cancelled = first_if_all_cancelled(group)  # every branch cancelled (a run left): usual
    if cancelled is not None:
        return cancelled
    _, failed = group.split(trio.Cancelled)
    if failed is None or any(not isinstance(exc, Exception) for exc in leaves(failed)):
        return single_member(group)  # a cancellation, KeyboardInterrupt or SystemExit
    return _collected([exc for exc in failed.exceptions if isinstance(exc, Exception)], path)


def _collected(failures: list[Exception], path: str) -> Exception:
    if len(failures) == 1:
        return failures[0]
    group = ExceptionGroup(f"step {path!r}: {len(failures)} branches failed", failures)
    group.__suppress_context__ = True  # raised in a handler, as ``from None`` would
    return group
