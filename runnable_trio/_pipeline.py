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
import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import attrs

from ._errors import (
    PipelineArgumentError,
    PipelineDefinitionError,
    RunConfigurationError,
    short_repr,
)

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
    "describe_owner",
    "is_finite_number",
]

_C = TypeVar("_C", bound=type)


def definition_error(
    owner: object, field: str, expected: str, got: object
) -> PipelineDefinitionError:
    """Build the uniform build-time error: who, which field, what was expected, what was given."""
    return PipelineDefinitionError(
        owner=describe_owner(owner), field=field, expected=expected, given=short_repr(got)
    )


def describe_owner(owner: object) -> str:
    """How an error names what was being built: ``AsyncPythonTask 'fetch'``, ``Retry``."""
    name = getattr(owner, "name", None)
    kind = owner.__name__ if isinstance(owner, type) else type(owner).__name__
    return f"{kind} {name!r}" if isinstance(name, str) and name else kind


def checked_init(cls: _C) -> _C:
    """Make a call with wrong arguments a ``PipelineArgumentError`` naming the class and them.

    A missing required argument, an unknown keyword (a typo) or too many positional arguments
    would otherwise be a bare ``TypeError`` that names neither the step nor what it accepts.
    Works on any class whose ``__init__`` is defined on it (attrs-generated or written).
    """
    original: Callable[..., None] = vars(cls)["__init__"]
    signature = inspect.signature(original)

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        # Nothing extra on the good path: the arguments are looked at only when the call
        # failed with a TypeError, which may also come from inside (then it goes on as it is).
        try:
            original(self, *args, **kwargs)
        except TypeError:
            try:
                signature.bind(self, *args, **kwargs)
            except TypeError:
                raise _argument_error(cls, signature, args, kwargs) from None
            raise

    cls.__init__ = __init__  # type: ignore[misc]
    return cls


def _argument_error(
    cls: type, signature: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> PipelineArgumentError:
    parameters = list(signature.parameters.values())[1:]  # without self
    kind = inspect.Parameter
    positional = [
        p for p in parameters if p.kind in (kind.POSITIONAL_ONLY, kind.POSITIONAL_OR_KEYWORD)
    ]
    keywords = sorted(
        p.name for p in parameters if p.kind in (kind.POSITIONAL_OR_KEYWORD, kind.KEYWORD_ONLY)
    )
    name = kwargs.get(
        "name", args[0] if args and positional and positional[0].name == "name" else ""
    )
    where = f"{cls.__name__} {name!r}" if isinstance(name, str) and name else cls.__name__
    takes_any_keyword = any(p.kind is kind.VAR_KEYWORD for p in parameters)
    unknown = [] if takes_any_keyword else sorted(set(kwargs) - set(keywords))
    if unknown:
        return PipelineArgumentError(
            f"{where}: unknown keyword {', '.join(map(repr, unknown))}; "
            f"accepted keywords are {', '.join(keywords)}"
        )
    usage = f"{cls.__name__}({', '.join(p.name for p in positional)}, ...)"
    if len(args) > len(positional):
        if not positional:
            return PipelineArgumentError(
                f"{where}: takes keyword arguments only ({', '.join(keywords)}), "
                f"got {len(args)} positional"
            )
        return PipelineArgumentError(
            f"{where}: takes at most {len(positional)} positional arguments "
            f"({', '.join(p.name for p in positional)}; the others are keyword-only), "
            f"got {len(args)}"
        )
    given_twice = [p.name for p in positional[: len(args)] if p.name in kwargs]
    if given_twice:
        return PipelineArgumentError(
            f"{where}: {', '.join(map(repr, given_twice))} given both by position and by keyword"
        )
    by_position = {p.name for p in positional[: len(args)]}
    missing = [
        p.name
        for p in parameters
        if p.default is kind.empty
        and p.kind not in (kind.VAR_POSITIONAL, kind.VAR_KEYWORD)
        and p.name not in kwargs
        and p.name not in by_position
    ]
    plural = "s" if len(missing) > 1 else ""
    return PipelineArgumentError(
        f"{where}: missing required argument{plural} {', '.join(map(repr, missing))} "
        f"(usage: {usage})"
    )


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


def is_finite_number(value: object) -> bool:
    """An int or float (not a bool) that is a finite float: no NaN, inf or 10**400."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)  # an int too large for a float raises OverflowError
    except OverflowError:
        return False


def check_seconds(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """Validate an optional duration in seconds: ``None`` or a positive finite number."""
    if value is None:
        return
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        if is_finite_number(value):
            return
        raise definition_error(
            instance, attribute.name, "a finite number of seconds (a float) or None", value
        )
    raise definition_error(instance, attribute.name, "a positive number of seconds or None", value)


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
                f"{describe_owner(self)}: 'terminate_with_success' and 'terminate_with_failure' "
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
                f"{describe_owner(instance)}: two steps are named {step.name!r}; step names "
                "must be unique within a pipeline"
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
        _check_positional_arguments(
            configuration_file=configuration_file,
            run_id=run_id,
            tag=tag,
            parameters_file=parameters_file,
        )
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

    def to_mermaid(self) -> str:
        """The pipeline as a Mermaid flowchart (what ``runnable-trio graph`` prints)."""
        from ._mermaid import to_mermaid

        return to_mermaid(self)


def _check_positional_arguments(**given: object) -> None:
    """Refuse a mapping passed where ``execute_streaming()`` takes a str by position.

    ``execute_streaming({"x": 5})`` reads as "run with these parameters", but the first
    positional argument is ``configuration_file``, as in the reference.
    """
    for field, value in given.items():
        if isinstance(value, Mapping):
            raise RunConfigurationError(
                f"execute_streaming(): {field!r} must be a str (got a mapping, "
                f"{short_repr(value)}); parameters are keyword-only: "
                "execute_streaming(parameters={...})"
            )
