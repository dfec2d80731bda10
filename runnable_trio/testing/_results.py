"""Running to the end in one call, and the assertions tests make about a run.

``run_to_end`` gives ``(events, run_log, error)`` whatever happens: ``error`` is the
``ExecutionFailedError`` a failed run ends with (its ``__cause__`` is the step's own
exception), ``None`` for a run that succeeded. ``assert_final`` fails for any record left
``PROCESSING``; ``assert_events`` compares events without their attribution metadata and
shows a diff.
"""

from __future__ import annotations

import difflib
import itertools
import pprint
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from .._errors import ExecutionFailedError
from .._events import META_KEY
from .._runlog import RunLog, Status, StepLog
from ._faults import Fault, FaultPlan, inject

if TYPE_CHECKING:
    from .._pipeline import AsyncPipeline

__all__ = [
    "RunResult",
    "assert_events",
    "assert_final",
    "not_final",
    "run_to_end",
    "strip_meta",
]

Surface = Literal["stream", "execute_streaming"]


class RunResult(NamedTuple):
    """A run that has ended: every event, the final run log, and its error (or ``None``)."""

    events: list[dict[str, Any]]
    run_log: RunLog
    error: ExecutionFailedError | None

    @property
    def cause(self) -> BaseException | None:
        """The step's own exception a failed run ended with."""
        return None if self.error is None else self.error.__cause__


async def run_to_end(
    pipeline: AsyncPipeline,
    *,
    surface: Surface = "stream",
    faults: FaultPlan | Mapping[str, Fault | Iterable[Fault]] | None = None,
    **kwargs: Any,
) -> RunResult:
    """Run ``pipeline`` to its end; its events, run log and error.

    Args:
        surface: ``"stream"`` (``async with pipeline.stream()``) or ``"execute_streaming"``.
        faults: a fault plan applied to this run (as ``with inject(faults):``).
        kwargs: passed to the surface (``parameters=``, ``attribution=``, ...).
    """
    if faults is not None:
        with inject(faults):
            return await run_to_end(pipeline, surface=surface, **kwargs)
    events: list[dict[str, Any]] = []
    error: ExecutionFailedError | None = None
    if surface == "stream":
        async with pipeline.stream(**kwargs) as stream:
            try:
                async for event in stream:
                    events.append(event)
            except ExecutionFailedError as exc:
                error = exc
        return RunResult(events, stream.run_log, error)
    if surface == "execute_streaming":
        run = pipeline.execute_streaming(**kwargs)
        try:
            async for event in run:
                events.append(event)
        except ExecutionFailedError as exc:
            error = exc
        finally:
            await run.aclose()
        return RunResult(events, run.run_log, error)
    raise ValueError(f"surface must be 'stream' or 'execute_streaming' (got {surface!r})")


def _walk(steps: Mapping[str, StepLog]) -> Iterator[tuple[str, str, Status]]:
    for step in steps.values():
        yield f"step {step.path}", step.kind, step.status
        for attempt in step.attempts:
            yield f"step {step.path} attempt {attempt.number}", "attempt", attempt.status
        for key, branch in step.branches.items():
            yield f"branch {step.path}.{key}", "branch", branch.status
            yield from _walk(branch.steps)


def not_final(run_log: RunLog) -> list[str]:
    """Every record of ``run_log`` still ``PROCESSING`` (the run, steps, branches, attempts)."""
    found = [f"run {run_log.run_id}"] if run_log.status is Status.PROCESSING else []
    found += [where for where, _, status in _walk(run_log.steps) if status is Status.PROCESSING]
    return found


def assert_final(run_log: RunLog) -> None:
    """Fail unless the run and every step, branch and attempt record in it have ended."""
    left = not_final(run_log)
    if left:
        raise AssertionError(
            f"run {run_log.run_id} ({run_log.status}) has records still PROCESSING:\n  "
            + "\n  ".join(left)
        )


def strip_meta(events: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The events without their attribution metadata (``"_meta"``)."""
    return [{k: v for k, v in event.items() if k != META_KEY} for event in events]


def assert_events(
    events: Iterable[Mapping[str, Any]],
    expected: Sequence[Mapping[str, Any]],
    *,
    subset: bool = False,
    types: Iterable[str] | None = None,
) -> None:
    """Fail unless ``events`` are ``expected``, ``"_meta"`` ignored, with a diff.

    Args:
        subset: compare only the keys each expected event names (``{"type": "chunk"}``
            matches any chunk event).
        types: compare only the events of these ``type`` values (e.g. leave out the
            lifecycle events).
    """
    actual = strip_meta(events)
    if types is not None:
        wanted = set(types)
        actual = [e for e in actual if e.get("type") in wanted]
    shown = actual
    if subset:
        shown = [
            e if x is None else {k: e[k] for k in x if k in e}
            for e, x in itertools.zip_longest(actual, expected)
            if e is not None
        ]
    wanted_events = [dict(x) for x in expected]
    if shown == wanted_events:
        return
    diff = difflib.unified_diff(
        _lines(wanted_events), _lines(shown), "expected", "actual", lineterm="", n=2
    )
    raise AssertionError(
        f"events differ ({len(actual)} received, {len(wanted_events)} expected; "
        f"'_meta' ignored{', only the keys expected' if subset else ''}):\n" + "\n".join(diff)
    )


def _lines(events: list[dict[str, Any]]) -> list[str]:
    return [
        f"{i}: {pprint.pformat(event, width=90, sort_dicts=False)}"
        for i, event in enumerate(events)
    ]
