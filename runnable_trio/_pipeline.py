"""The pipeline graph: the step base class and ``AsyncPipeline``.

Steps and pipelines are frozen descriptions. Building a pipeline checks everything that can be
checked without running it and never modifies a step, so one step object may sit in several
pipelines, and a pipeline may be run many times, concurrently, from many tasks.

How a step runs is the business of its own module (``_task.py``, ``_parallel.py``...): each
step class implements ``_execute``; the shared policy around it (records, lifecycle events,
timeouts, ``on_failure``, ``terminate_with_*``) lives in ``_runner.py``. ``AsyncPipeline``'s
streaming methods check their keywords into a ``RunOptions`` and import the run layer
(``_prepare``, ``_stream``, ``_streaming``) when first called (:func:`_run_layer`): running a
pipeline is that layer's job, and nothing it imports at module level imports this module back.
The build-time checks are ``_validators``'; a definition as data is ``_definition``'s
(``describe()``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import attrs

from ._definition import Described, describe_pipeline, describe_step
from ._errors import PipelineDefinitionError
from ._options import RunOptions, check_positional_arguments
from ._validators import check_bool, check_seconds, checked_init, definition_error, describe_owner

if TYPE_CHECKING:
    from ._run import PreparedRun
    from ._runlog import StepLog
    from ._runner import RunContext
    from ._scope import Scope
    from ._store import RunLogStore
    from ._stream import EventStream
    from ._streaming import StreamingRun

__all__ = ["AsyncPipeline", "BaseStep"]


def _check_name(instance: BaseStep, attribute: attrs.Attribute[str], value: object) -> None:
    if not isinstance(value, str) or not value:
        raise definition_error(instance, "name", "a non-empty str", value)
    if "." in value or "%" in value:
        raise definition_error(
            instance, "name", "free of '.' and '%' (they separate step paths)", value
        )


def _check_on_failure(instance: BaseStep, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, AsyncPipeline):
        raise definition_error(instance, "on_failure", "an AsyncPipeline or None", value)


@attrs.frozen(kw_only=True)
class BaseStep(Described):
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

    def assigned_names(self) -> tuple[str, ...]:
        """The names this step's own work can assign (its ``on_failure`` pipeline's aside):
        a task's ``returns``, a composite step's branches'. None for the base step."""
        return ()

    def describe(self) -> dict[str, Any]:
        """The step's definition as JSON-compatible data (its kind and its fields)."""
        return describe_step(self)


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


class _RunLayer(NamedTuple):
    """What the streaming methods call in the run layer."""

    check_called_from_trio: Callable[[str], None]
    prepare_run: Callable[[AsyncPipeline, RunOptions], PreparedRun]
    start_streaming: Callable[[PreparedRun], StreamingRun]
    open_stream: Callable[[PreparedRun], AbstractAsyncContextManager[EventStream]]


@functools.cache
def _run_layer() -> _RunLayer:
    """The run layer, imported at the first run and kept: an import statement of a module
    already imported still costs ~8,000 instructions, two of them on the way to every run's
    first event. (Imported at module level, the graph and the run layer would import each
    other, and ``import runnable_trio`` would take the whole run layer.)"""
    from ._prepare import check_called_from_trio, prepare_run
    from ._stream import open_stream
    from ._streaming import start_streaming

    return _RunLayer(check_called_from_trio, prepare_run, start_streaming, open_stream)


def _check_text(instance: AsyncPipeline, attribute: attrs.Attribute[str], value: object) -> None:
    if not isinstance(value, str):
        raise definition_error(instance, attribute.name, "a str", value)


@checked_init
@attrs.frozen
class AsyncPipeline(Described):
    """A sequence of steps run one after the other, streaming their events.

    Args:
        steps: the steps, in order; names must be unique.
        name: a name for run logs (optional).
        description: free text kept in the run log (optional).
    """

    steps: Sequence[BaseStep] = attrs.field(converter=_steps_converter, validator=_check_steps)
    name: str = attrs.field(default="", kw_only=True, validator=_check_text)
    description: str = attrs.field(default="", kw_only=True, validator=_check_text)

    #: The pipeline's definition as JSON-compatible data: what a run log records and its
    #: definition hash covers (the function itself: no frame of its own per branch).
    describe = describe_pipeline

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
        run_layer = _run_layer()
        run_layer.check_called_from_trio("execute_streaming()")
        if not (
            type(configuration_file) is type(run_id) is type(tag) is type(parameters_file) is str
        ):
            # Four str (the usual call) hold no mapping: not the ~4,000 instructions of a
            # call with keywords to find that out.
            check_positional_arguments(
                configuration_file=configuration_file,
                run_id=run_id,
                tag=tag,
                parameters_file=parameters_file,
            )
        options = RunOptions.check(
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
        return run_layer.start_streaming(run_layer.prepare_run(self, options))

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
        run_layer = _run_layer()
        run_layer.check_called_from_trio("stream()")
        options = RunOptions.check(
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
        return run_layer.open_stream(run_layer.prepare_run(self, options))

    def to_mermaid(self) -> str:
        """The pipeline as a Mermaid flowchart (what ``runnable-trio graph`` prints)."""
        from ._mermaid import to_mermaid

        return to_mermaid(self)
