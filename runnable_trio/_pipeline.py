"""The pipeline graph: the step base class and ``AsyncPipeline``.

Steps and pipelines are frozen descriptions. Building a pipeline checks everything that can be
checked without running it and never modifies a step, so one step object may sit in several
pipelines, and a pipeline may be run many times, concurrently, from many tasks.

How a step runs is the business of its own module (``_task.py``, ``_parallel.py``...): each
step class implements ``_execute``; the shared policy around it (records, lifecycle events,
timeouts, ``on_failure``, ``terminate_with_*``) lives in ``_runner.py``. ``AsyncPipeline``'s
streaming methods import ``_stream`` when called, because running a pipeline belongs to the layer
above this one.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import attrs

from ._errors import PipelineDefinitionError

if TYPE_CHECKING:
    from ._runlog import StepLog
    from ._runner import RunContext, Scope
    from ._store import RunLogStore
    from ._stream import EventStream, StreamingRun

__all__ = [
    "AsyncPipeline",
    "BaseStep",
    "check_bool",
    "check_seconds",
    "checked_init",
    "definition_error",
]

_C = TypeVar("_C", bound=type)


def definition_error(
    owner: object, field: str, expected: str, got: object
) -> PipelineDefinitionError:
    """Build the uniform build-time error: who, which field, what was expected, what was given."""
    return PipelineDefinitionError(
        f"{_describe(owner)}: {field!r} must be {expected} (got {got!r})"
    )


def _describe(owner: object) -> str:
    name = getattr(owner, "name", None)
    kind = type(owner).__name__
    return f"{kind} {name!r}" if isinstance(name, str) and name else kind


def checked_init(cls: _C) -> _C:
    """Make an unknown keyword a ``PipelineDefinitionError`` naming the step and the keyword.

    attrs would raise a bare ``TypeError`` that names neither the step nor the accepted keywords.
    """
    original: Callable[..., None] = vars(cls)["__init__"]
    accepted = {a.alias for a in attrs.fields(cls) if a.init}

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        unknown = sorted(set(kwargs) - accepted)
        if unknown:
            name = kwargs.get("name", args[0] if args else "")
            where = f"{cls.__name__} {name!r}" if name else cls.__name__
            raise PipelineDefinitionError(
                f"{where}: unknown keyword {', '.join(map(repr, unknown))}; "
                f"accepted keywords are {', '.join(sorted(accepted))}"
            )
        original(self, *args, **kwargs)

    cls.__init__ = __init__  # type: ignore[misc]
    return cls


def _check_name(instance: BaseStep, attribute: attrs.Attribute[str], value: object) -> None:
    if not isinstance(value, str) or not value:
        raise definition_error(instance, "name", "a non-empty str", value)
    if "." in value or "%" in value:
        raise definition_error(
            instance, "name", "free of '.' and '%' (they separate step paths)", value
        )


def check_bool(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """A field holding a bool."""
    if not isinstance(value, bool):
        raise definition_error(instance, attribute.name, "a bool", value)


def _check_on_failure(instance: BaseStep, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, AsyncPipeline):
        raise definition_error(instance, "on_failure", "an AsyncPipeline or None", value)


def check_seconds(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """Validate an optional duration in seconds: ``None`` or a positive finite number."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not (0 < value < math.inf):
        raise definition_error(
            instance, attribute.name, "a positive number of seconds or None", value
        )


@attrs.frozen(kw_only=True)
class BaseStep:
    """What every step has: a name, failure handling and an optional hard timeout.

    Args:
        name: unique within its pipeline; must not contain ``.`` or ``%``.
        on_failure: a pipeline run when this step fails; the steps after this one are then
            skipped, and the pipeline succeeds unless the recovery pipeline fails.
        terminate_with_success: end the pipeline successfully after this step.
        terminate_with_failure: end the pipeline as failed after this step.
        timeout: seconds after which an attempt at the step is cancelled and fails with
            ``StepTimeoutError`` (per attempt: a task's retry gets a fresh limit; a composite
            step has one attempt, all its branches included).
    """

    #: The step kind written in run logs and lifecycle events.
    kind: ClassVar[str] = "step"

    name: str = attrs.field(validator=_check_name, kw_only=False)
    on_failure: AsyncPipeline | None = attrs.field(default=None, validator=_check_on_failure)
    terminate_with_success: bool = attrs.field(default=False, validator=check_bool)
    terminate_with_failure: bool = attrs.field(default=False, validator=check_bool)
    timeout: float | None = attrs.field(default=None, validator=check_seconds)

    def __attrs_post_init__(self) -> None:
        if self.terminate_with_success and self.terminate_with_failure:
            raise PipelineDefinitionError(
                f"{_describe(self)}: 'terminate_with_success' and 'terminate_with_failure' "
                "cannot both be True"
            )

    async def _execute(self, ctx: RunContext, scope: Scope, path: str, log: StepLog) -> None:
        """Run the step's own work in ``scope``; raise to fail. Implemented by each kind."""
        raise NotImplementedError

    def as_async_pipeline(self) -> AsyncPipeline:
        """A one-step pipeline of this step (the step object is shared, not copied)."""
        return AsyncPipeline([self], name=self.name)


def _steps_converter(value: object) -> object:
    # Keep whatever was given when it is not a list/tuple, so the validator can name it.
    return tuple(value) if isinstance(value, list | tuple) else value


def _check_steps(instance: AsyncPipeline, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, tuple) or not value:
        raise definition_error(instance, "steps", "a non-empty list of steps", value)
    seen: set[str] = set()
    for step in value:
        if not isinstance(step, BaseStep):
            raise definition_error(
                instance, "steps", "a list of steps (AsyncPythonTask, Parallel, Map, ...)", step
            )
        if step.name in seen:
            raise PipelineDefinitionError(
                f"{_describe(instance)}: two steps are named {step.name!r}; step names must be "
                "unique within a pipeline"
            )
        seen.add(step.name)


def _check_text(instance: AsyncPipeline, attribute: attrs.Attribute[str], value: object) -> None:
    if not isinstance(value, str):
        raise definition_error(instance, attribute.name, "a str", value)


@checked_init
@attrs.frozen
class AsyncPipeline:
    """A sequence of steps run one after the other, streaming their events.

    Args:
        steps: the steps, in order; names must be unique.
        name: a name for run logs (optional).
        description: free text kept in the run log (optional).
    """

    steps: Sequence[BaseStep] = attrs.field(converter=_steps_converter, validator=_check_steps)
    name: str = attrs.field(default="", kw_only=True, validator=_check_text)
    description: str = attrs.field(default="", kw_only=True, validator=_check_text)

    def execute_streaming(
        self,
        configuration_file: str = "",
        run_id: str = "",
        tag: str = "",
        parameters_file: str = "",
        log_level: int | str = "WARNING",
        *,
        parameters: Mapping[str, Any] | None = None,
        attribution: bool = False,
        buffer_size: int | None = None,
        event_log: bool | None = None,
        store: RunLogStore | None = None,
    ) -> StreamingRun:
        """Run the pipeline and iterate over its events: ``async for event in ...``.

        Parameters are read here, synchronously (the ``parameters`` mapping, then the
        ``RUNNABLE_PRM_*`` environment variables, then ``parameters_file``); the run starts on
        the first ``__anext__``. It is safe to ``break`` out of the loop: leaving the
        iteration in any way cancels the run.

        Args:
            configuration_file: YAML choosing the run-log store and folders.
            run_id: the run's id; generated (unique) when empty.
            tag: free text recorded in the run log.
            parameters_file: YAML mapping of initial parameters.
            log_level: threshold of this run's log messages (name or number).
            parameters: initial parameters; they take precedence over the environment and
                the file.
            attribution: also attach ``"_meta"`` (run id, sequence number, step path,
                timestamp) to each event and stream the framework's lifecycle events.
            buffer_size: capacity of the bounded event buffer.
            event_log: record every event with its sequence number in
                ``<run log folder>/<run_id>.events.jsonl``, for ``replay()``; ``None`` takes
                the configuration file's ``event_log`` (off by default).
            store: the run-log store to record the run in, instead of the one the
                configuration names (e.g. a ``MemoryRunLogStore`` of a test).

        Raises:
            RunConfigurationError: at the call, for unusable parameters or ids, or when
                called from asyncio code (use ``import runnable`` there).
            ExecutionFailedError: from the iteration, after the last event, if the run
                failed.
        """
        from ._stream import StreamingRun, check_called_from_trio, prepare_run

        check_called_from_trio("execute_streaming()")
        return StreamingRun(
            prepare_run(
                self,
                configuration_file=configuration_file,
                run_id=run_id,
                tag=tag,
                parameters_file=parameters_file,
                log_level=log_level,
                parameters=parameters,
                attribution=attribution,
                buffer_size=buffer_size,
                event_log=event_log,
                store=store,
            )
        )

    def stream(
        self,
        *,
        parameters: Mapping[str, Any] | None = None,
        run_id: str | None = None,
        tag: str = "",
        parameters_file: str = "",
        configuration_file: str = "",
        log_level: int | str = "WARNING",
        attribution: bool = False,
        buffer_size: int | None = None,
        event_log: bool | None = None,
        store: RunLogStore | None = None,
    ) -> AbstractAsyncContextManager[EventStream]:
        """Run the pipeline in a nursery owned by an ``async with`` block.

        ``async with pipeline.stream(parameters={...}) as events: async for event in events:``.
        Leaving the block before the run has finished cancels the run and waits for it to
        end; the run log then says ``CANCELLED``. Arguments are as for
        :meth:`execute_streaming`.

        Raises:
            RunConfigurationError: at the call, for unusable parameters or ids, or when
                called from asyncio code (use ``import runnable`` there).
            ExecutionFailedError: from the iteration, after the last event, if the run
                failed.
        """
        from ._stream import check_called_from_trio, open_stream, prepare_run

        check_called_from_trio("stream()")
        return open_stream(
            prepare_run(
                self,
                configuration_file=configuration_file,
                run_id=run_id or "",
                tag=tag,
                parameters_file=parameters_file,
                log_level=log_level,
                parameters=parameters,
                attribution=attribution,
                buffer_size=buffer_size,
                event_log=event_log,
                store=store,
            )
        )
