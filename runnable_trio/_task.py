"""``AsyncPythonTask``: a step that calls one Python function.

The function may be an ``async def`` (awaited; its return value maps onto ``returns``
positionally), an async generator function (its events are streamed; the ``stream_end_type``
event maps onto ``returns`` by key name), or a plain ``def`` (run in a worker thread with
``trio.to_thread.run_sync``, never on the event loop; a thread cannot be interrupted, so
cancelling such a step waits for the function to return). A sync generator function is
rejected when the task is built: its events could not be streamed without blocking the loop.

``idle_timeout`` is a cancel scope whose deadline moves forward each time the generator
yields; time spent waiting for a slow consumer does not count against it.
"""

from __future__ import annotations

import enum
import functools
import inspect
import logging
import math
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from contextlib import aclosing
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar

import attrs
import trio

from ._catalog import Catalog
from ._errors import EventError, ReturnsError, StepTimeoutError, short_repr
from ._params import Binder
from ._pipeline import BaseStep
from ._retry import Retry
from ._returns import ReturnKind, TaskReturns
from ._runlog import (
    BranchLog,
    Status,
    StepLog,
    first_attempt_records,
    utc_now,
)
from ._runner import STEP_FRAMES, checkpoint_if_cancelled, run_branch
from ._validators import check_seconds, checked_init, definition_error

if TYPE_CHECKING:
    from ._pipeline import AsyncPipeline
    from ._runner import RunContext
    from ._scope import Scope

__all__ = ["AsyncPythonTask", "TaskKind"]

#: Set by ``runnable_trio.testing`` once a fault plan is used: called per attempt with
#: ``(task, path, log)``, it returns the faults to apply (``call``/``stream`` wrappers) or None.
#: None (the default) costs one check per attempt.
fault_hook: Callable[[AsyncPythonTask, str, StepLog], Any] | None = None


_SUCCESS = Status.SUCCESS
_FAIL = Status.FAIL
_CANCELLED = Status.CANCELLED
#: What a task that returns nothing gives back (never written to: ``if values`` guards).
_NOTHING: Mapping[str, Any] = MappingProxyType({})


class TaskKind(enum.Enum):
    """What kind of callable a task calls (``AsyncPythonTask.function_kind``)."""

    COROUTINE = "coroutine"
    GENERATOR = "async generator"
    SYNC = "sync"


#: Looked up once: an Enum member read from its class costs a call of the metaclass's hook,
#: and the steps of a branch's task ask for its kind on every run.
_GENERATOR = TaskKind.GENERATOR
_COROUTINE = TaskKind.COROUTINE


def _function_kind(function: Callable[..., Any]) -> TaskKind | None:
    """The kind of a callable, or None for a sync generator function."""
    for target in (function, type(function).__call__):
        # inspect sees through bound methods and functools.partial; the second pass
        # looks at the __call__ of a callable object.
        if inspect.isasyncgenfunction(target):
            return TaskKind.GENERATOR
        if inspect.iscoroutinefunction(target):
            return TaskKind.COROUTINE
        if inspect.isgeneratorfunction(target):
            return None
    return TaskKind.SYNC


def _returns_converter(value: object) -> object:
    if isinstance(value, list | tuple):
        return tuple(
            TaskReturns(item) if isinstance(item, str) and item.isidentifier() else item
            for item in value
        )
    return value


def _check_returns(
    instance: AsyncPythonTask, attribute: attrs.Attribute[Any], value: object
) -> None:
    expected = "a list of str or TaskReturns (json(...), pickled(...), metric(...))"
    if not isinstance(value, tuple):
        raise definition_error(instance, "returns", expected, value)
    names: set[str] = set()
    for item in value:
        if isinstance(item, str):
            raise definition_error(instance, "returns", "names that are Python identifiers", item)
        if not isinstance(item, TaskReturns):
            raise definition_error(instance, "returns", expected, item)
        if item.name in names:
            raise definition_error(instance, "returns", "a list of distinct names", item.name)
        names.add(item.name)


def _check_function(
    instance: AsyncPythonTask, attribute: attrs.Attribute[Any], value: object
) -> None:
    if not callable(value):
        raise definition_error(instance, "function", "a callable", value)
    if _function_kind(value) is None:
        raise definition_error(
            instance,
            "function",
            "an async def, an async generator function or a plain def; a sync generator's "
            "events cannot be streamed (make it an async generator)",
            value,
        )


def _check_end_type(
    instance: AsyncPythonTask, attribute: attrs.Attribute[str], value: object
) -> None:
    if not isinstance(value, str) or not value:
        raise definition_error(instance, "stream_end_type", "a non-empty str", value)


def _check_retry(instance: AsyncPythonTask, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, Retry):
        raise definition_error(instance, "retry", "a Retry or None", value)


def _check_catalog(
    instance: AsyncPythonTask, attribute: attrs.Attribute[Any], value: object
) -> None:
    if value is not None and not isinstance(value, Catalog):
        raise definition_error(instance, "catalog", "a Catalog or None", value)


@checked_init
@attrs.frozen(kw_only=True)
class AsyncPythonTask(BaseStep):
    """A step that calls ``function`` with parameters bound by name.

    Args:
        name: the step's name (unique within its pipeline, no ``.`` or ``%``).
        function: an ``async def``, an async generator function or a plain ``def``.
        returns: names (or ``json``/``pickled``/``metric`` kinds) the results are kept as.
        stream_end_type: the ``type`` of the generator event holding the results.
        catalog: files to get from and put into the run's catalog.
        retry: a :class:`Retry` policy; by default a failure is final.
        idle_timeout: seconds a generator may stay silent before the step fails.
        on_failure, terminate_with_success, terminate_with_failure, timeout: see
            :class:`BaseStep`.
    """

    kind = "task"

    function: Callable[..., Any] = attrs.field(kw_only=False, validator=_check_function)
    returns: Sequence[TaskReturns] = attrs.field(
        default=(), converter=_returns_converter, validator=_check_returns
    )
    stream_end_type: str = attrs.field(default="done", validator=_check_end_type)
    catalog: Catalog | None = attrs.field(default=None, validator=_check_catalog)
    retry: Retry | None = attrs.field(default=None, validator=_check_retry)
    idle_timeout: float | None = attrs.field(default=None, validator=check_seconds)
    _binder: Binder = attrs.field(init=False, repr=False, eq=False)
    _kind: TaskKind = attrs.field(init=False, repr=False, eq=False)
    #: The return's name when there is exactly one (else None), and the names of the
    #: ``pickled`` and ``metric`` returns: read once per step, not found per step.
    _single: str | None = attrs.field(init=False, repr=False, eq=False)
    _pickled: tuple[str, ...] = attrs.field(init=False, repr=False, eq=False)
    _metrics: tuple[str, ...] = attrs.field(init=False, repr=False, eq=False)
    #: Whether a branch of this task alone may run as :meth:`run_alone` (see there).
    runs_alone: bool = attrs.field(init=False, repr=False, eq=False)
    #: Whether a coroutine function is called as it is (no subclass drives it its own way,
    #: :meth:`_call_coroutine`): the call inline, not a method's frame per step.
    _calls_directly: bool = attrs.field(init=False, repr=False, eq=False)
    #: Whether the function takes no parameter at all (no argument, no ``**kwargs``): its
    #: arguments are an empty dict, not bound from the scope (two calls per step).
    _takes_nothing: bool = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        kind = _function_kind(self.function)
        assert kind is not None  # the validator rejected sync generators
        object.__setattr__(self, "_kind", kind)
        binder = self._make_binder()
        object.__setattr__(self, "_binder", binder)
        object.__setattr__(self, "_takes_nothing", not binder.arguments and not binder.takes_rest)
        returns = self.returns
        object.__setattr__(self, "_single", returns[0].name if len(returns) == 1 else None)
        pickled = tuple(r.name for r in returns if r.kind is ReturnKind.PICKLED)
        object.__setattr__(self, "_pickled", pickled)
        metrics = tuple(r.name for r in returns if r.kind is ReturnKind.METRIC)
        object.__setattr__(self, "_metrics", metrics)
        cls = type(self)
        alone = (
            self.idle_timeout is None
            and self.retry is None
            and self.timeout is None
            and self.on_failure is None
            and self.catalog is None
            and not pickled
            and not self.terminate_with_success
            and not self.terminate_with_failure
            # A subclass running its function its own way (compat's) keeps the general path.
            and cls._execute is AsyncPythonTask._execute
            and cls.run_alone is AsyncPythonTask.run_alone
        )
        object.__setattr__(self, "runs_alone", alone)
        direct = cls._call_coroutine is AsyncPythonTask._call_coroutine
        object.__setattr__(self, "_calls_directly", direct)

    def assigned_names(self) -> tuple[str, ...]:
        """The names of the task's ``returns``."""
        return tuple(r.name for r in self.returns)

    @property
    def function_kind(self) -> TaskKind:
        """What kind of callable this task calls: coroutine, async generator or plain def."""
        return self._kind

    def _make_binder(self) -> Binder:
        try:
            binder = Binder.of(self.function)
        except (ValueError, TypeError):
            raise definition_error(
                self,
                "function",
                "a callable whose signature can be read, as parameters bind to its arguments "
                "by name (this builtin has none: wrap it in a def naming its arguments)",
                self.function,
            ) from None
        if binder.unbindable:
            names = binder.unbindable
            raise definition_error(
                self,
                "function",
                "a callable whose required arguments can be passed by name (parameters bind "
                f"by name; {', '.join(map(repr, names))} "
                f"{'is' if len(names) == 1 else 'are'} positional-only: wrap it in a def)",
                self.function,
            )
        return binder

    async def _execute(self, ctx: RunContext, scope: Scope, path: str, log: StepLog) -> None:
        faults = None if fault_hook is None else fault_hook(self, path, log)
        catalog = self.catalog
        if catalog is not None and catalog.get:
            log.add_catalog(await ctx.catalog.get(catalog.get, path))
        kwargs = {} if self._takes_nothing else scope.arguments(self._binder, path)
        attempt = log.attempts[-1]
        if attempt.parameters_in:
            attempt.parameters_in.update(kwargs)
        else:  # the arguments' dict, not a copy: the call unpacked it, nothing else holds it
            attempt.parameters_in = kwargs
        if self._kind is _GENERATOR:
            end = await self._stream(ctx, kwargs, path, faults)
            values = self._end_event_values(end, path)
        else:
            if self._kind is _COROUTINE:
                call = (
                    self.function(**kwargs)
                    if self._calls_directly
                    else self._call_coroutine(kwargs)
                )
            else:
                call = trio.to_thread.run_sync(functools.partial(self.function, **kwargs))
            if faults is not None:
                call = faults.call(call)
            if self._guard_call is not None:
                call = self._guard_call(call, path)
            result = await call
            single = self._single
            values = (
                {single: result} if single is not None else self._positional_values(result, path)
            )
        # Files and pickled values are stored before the results are published: a failure
        # to store them fails the step.
        if catalog is not None and catalog.put:
            log.add_catalog(await ctx.catalog.put(catalog.put, path, store_copy=catalog.store_copy))
        # Each loop behind a test: an iterator per step otherwise, over an empty tuple.
        if self._pickled:
            for name in self._pickled:
                log.add_catalog([await ctx.catalog.put_object(path, name, values[name])])
        scope.publish(values, log)
        # A loop, not a comprehension: one would make ``values`` a closure cell, an object
        # the cyclic GC tracks for as long as the task runs (one per Map item).
        if self._metrics:
            for name in self._metrics:
                attempt.metrics[name] = values[name]

    async def run_alone(
        self,
        ctx: RunContext,
        pipeline: AsyncPipeline,
        scope: Scope,
        prefix: str,
        branch: BranchLog,
    ) -> None:
        """``run_branch(ctx, pipeline, scope, prefix, branch)`` for a branch that is this
        task alone (``pipeline``), in a run without attribution, telemetry, INFO logging or
        steps of an earlier attempt (``fan_out`` checks them): the same records, at the same
        moments, and the same errors, from one coroutine frame instead of three (an async
        generator's stream, ``_stream``, adds its frame on either path).

        A Map over n items holds n such stacks while they run: each frame is an object the
        cyclic GC walks, each switch of the item's task passes through every frame, and so
        does the ``Cancelled`` of a run being left, in every live branch at once. Only what
        such a task does is here: one attempt, no timeout or ``idle_timeout``, no
        ``on_failure``, no catalog or ``pickled`` return, no ``terminate_with_*``
        (``runs_alone``). The branch's scope is not written: the branch has no step after
        this one to read it, and ``fan_out`` takes only its ``assigned`` names.

        Cancellation: as ``run_step``: the records are left ``PROCESSING`` for the sweep that
        marks them ``CANCELLED`` (``cut_short``), the branch's too.
        """
        if fault_hook is not None:  # a fault plan (testing) wraps the attempt: the general way
            await run_branch(ctx, pipeline, scope, prefix, branch)
            return
        # Cancelled here, before the step's record exists: the sweep marks the branch, as
        # run_step's checkpoint leaves it.
        await checkpoint_if_cancelled()
        name = self.name
        path = f"{prefix}.{name}"  # join_path: a branch's prefix is never empty
        running = ctx.running
        running.add(path)
        started = utc_now()
        kwargs: dict[str, Any] | None = None
        # Where the store reads the live record (the memory store), it is in the tree from
        # the start, as run_step puts it; elsewhere it is made as the attempt ends (each way
        # out makes it), from these locals: fewer objects while the item runs. A stream's
        # is made now: a live stream is what a run being left cuts short, and its records
        # are then in place for the sweep.
        log = attempt = None
        if ctx.live_records or self._kind is _GENERATOR:
            log, attempt = first_attempt_records(branch.steps, name, self.kind, path, started, None)
        # One ``try`` for the step and its branch: each handler an exception enters costs it
        # a few thousand instructions, and leaving a run unwinds every live branch at once.
        try:
            kwargs = {} if self._takes_nothing else scope.arguments(self._binder, path)
            if attempt is not None:
                attempt.parameters_in.update(kwargs)
            values: Mapping[str, Any]
            if self._kind is _GENERATOR:
                values = self._end_event_values(await self._stream(ctx, kwargs, path), path)
            else:
                if self._kind is _COROUTINE:
                    call = (
                        self.function(**kwargs)
                        if self._calls_directly
                        else self._call_coroutine(kwargs)
                    )
                else:
                    call = trio.to_thread.run_sync(functools.partial(self.function, **kwargs))
                if self._guard_call is not None:
                    call = self._guard_call(call, path)
                result = await call
                single = self._single
                if single is not None:
                    values = {single: result}
                elif self.returns:
                    values = self._positional_values(result, path)
                else:  # no call for a task that returns nothing (a Map item, often)
                    values = _NOTHING
        except Exception as exc:
            if log is None or attempt is None:
                log, attempt = first_attempt_records(
                    branch.steps, name, self.kind, path, started, kwargs
                )
            attempt.end(_FAIL, exc)
            try:  # run_step's handler, without the events attribution would send
                log.status = _FAIL
                ctx.note_failure(exc, path)
                ctx.log(logging.INFO, "run %s: step %s failed: %r", ctx.run_id, path, exc)
                if ctx.step_reports:
                    await ctx.store.step_finished(ctx.run_log, log)
            except Exception:
                branch.status = _FAIL  # nor could its record be written
                raise
            finally:
                running.discard(path)
            branch.status = _FAIL
            raise
        except BaseException as exc:
            if log is None:
                # Left PROCESSING, as run_step leaves it, for the sweep to mark (cut_short):
                # not here, while the branches after this one wait to unwind.
                first_attempt_records(branch.steps, name, self.kind, path, started, kwargs)
            if type(exc) is trio.Cancelled:
                # The function's own cleanup has run (its ``finally``): let every other
                # branch cut short with it run its cleanup too before this one unwinds our
                # frames and its task exits. The user's cleanup of a left fan-out is what
                # waits for that work otherwise: a hundred unwinds ahead of the last branch's.
                await trio.lowlevel.cancel_shielded_checkpoint()
            raise
        if log is None or attempt is None:
            log, attempt = first_attempt_records(
                branch.steps, name, self.kind, path, started, kwargs
            )
        if values:  # Scope.publish, without the copy nobody reads (see above)
            scope.assigned.update(values)
            log.assigned.update(values)
            attempt.parameters_out.update(values)
            # Inside: a metric is a return, and a task without returns gives back nothing
            # (no iterator over an empty tuple per Map item).
            for key in self._metrics:
                attempt.metrics[key] = values[key]
        attempt.ended_at = utc_now()  # attempt.end(_SUCCESS), inline: every item comes here
        attempt.status = _SUCCESS
        running.discard(path)
        log.status = _SUCCESS
        try:
            if ctx.step_reports:
                if ctx.finish_step_now is None:
                    await ctx.store.step_finished(ctx.run_log, log)
                else:
                    ctx.finish_step_now(ctx.run_log, log)
        except Exception:
            branch.status = _FAIL  # the step succeeded, its record was not written
            raise
        branch.status = _SUCCESS

    # Extension points: how the user's function is driven. The asyncio layer (compat/)
    # overrides these to run asyncio-flavoured functions on the host loop.

    def _call_coroutine(self, kwargs: dict[str, Any]) -> Awaitable[Any]:
        # Returns the awaitable rather than awaiting it: one coroutine frame less per task.
        awaitable: Awaitable[Any] = self.function(**kwargs)
        return awaitable

    def _open_generator(self, kwargs: dict[str, Any]) -> AsyncGenerator[Any, None]:
        generator: AsyncGenerator[Any, None] = self.function(**kwargs)
        return generator

    #: ``None``, or a method ``(call, path)`` giving what :meth:`_execute` and
    #: :meth:`run_alone` await in place of a coroutine's or a plain def's call (``call``:
    #: that call, with a fault plan's faults around it). A subclass sets it to change what the
    #: call raises (compat/ turns the function's own exception into its ``CommandCallError``):
    #: both paths then fail alike, so such a subclass keeps :meth:`run_alone`, which an
    #: override of :meth:`_execute` gives up. ``None`` here: no call per step where nothing
    #: wraps the call.
    _guard_call: ClassVar[Callable[..., Awaitable[Any]] | None] = None

    async def _stream(
        self, ctx: RunContext, kwargs: dict[str, Any], path: str, faults: Any = None
    ) -> Mapping[str, Any] | None:
        """Forward the generator's events; return its last ``stream_end_type`` event.

        The end event is copied when it is yielded, before the consumer can have it: the
        step's returns are what the generator yielded, whatever the consumer does to the
        dict afterwards.
        """
        end_type = self.stream_end_type
        sink = ctx.sink
        send_nowait = sink.unattributed_send()
        end: Mapping[str, Any] | None = None
        idle = self.idle_timeout
        generator = self._open_generator(kwargs)
        if faults is not None:
            generator = faults.stream(generator)
        if idle is None:
            # The hot loop of a streaming step: the usual event (a dict with a str type) is
            # checked inline and handed over without a call of ours when there is room.
            # The generator is closed where an exception arises outside it (a full buffer's
            # wait cancelled, a bad event), not by an ``aclosing`` block: what the generator
            # raised itself (the Cancelled of a run being left, in every live branch) has
            # closed it already, and then enters no handler here. Each handler an exception
            # enters costs a few thousand instructions (an ``aclosing`` exit, twice that).
            async for event in generator:
                try:
                    event_type = event.get("type") if type(event) is dict else None
                    if type(event_type) is not str:
                        event_type = self._check_event(event, path)
                    if event_type == end_type:
                        end = dict(event)  # taken now: the consumer may edit the event
                    if send_nowait is not None:
                        try:
                            send_nowait(event)
                            continue
                        except trio.WouldBlock:
                            pass
                    elif sink.emit_nowait(event, path) is None:
                        continue  # attribution on: stamped and sent, no coroutine
                    # Looked up here, not held: a bound method kept for the whole stream is
                    # one more object the cyclic GC walks per live streaming branch.
                    await sink.emit(event, path)
                except BaseException:
                    await generator.aclose()
                    raise
            if sink.first_pending and len(ctx.running) == 1:
                # The first events out before the step's record; only where no other step
                # runs (a sibling branch would go on meanwhile: fail-fast would not be).
                await sink.hand_over()
            return end
        async with aclosing(generator):
            with trio.CancelScope(deadline=trio.current_time() + idle) as silence:
                async for event in generator:
                    if self._check_event(event, path) == end_type:
                        end = dict(event)
                    silence.deadline = math.inf  # waiting for the consumer is not silence
                    await sink.emit(event, path)
                    silence.deadline = trio.current_time() + idle
            if silence.cancelled_caught:
                raise StepTimeoutError(path, "idle_timeout", idle)
        return end

    @staticmethod
    def _check_event(event: object, path: str) -> str:
        if type(event) is dict or isinstance(event, dict):
            event_type = event.get("type")
            if type(event_type) is str:
                return event_type
        raise EventError(
            path, f"yielded {short_repr(event)}; events must be dicts with a str 'type'"
        )

    def _end_event_values(self, end: Mapping[str, Any] | None, path: str) -> dict[str, Any]:
        if not self.returns:
            return {}
        if end is None:
            raise ReturnsError(
                path,
                f"the generator ended without a {self.stream_end_type!r} event, so "
                f"{', '.join(r.name for r in self.returns)} could not be set",
            )
        missing = [r.name for r in self.returns if r.name not in end]
        if missing:
            present = ", ".join(repr(k) for k in end if k != "type") or "none"
            raise ReturnsError(
                path,
                f"the {self.stream_end_type!r} event has no {', '.join(map(repr, missing))} "
                f"(its keys: {present})",
            )
        return {r.name: end[r.name] for r in self.returns}

    def _positional_values(self, result: Any, path: str) -> dict[str, Any]:
        if not self.returns:
            return {}
        if len(self.returns) == 1:
            return {self.returns[0].name: result}
        if not isinstance(result, tuple | list) or len(result) != len(self.returns):
            got = f"{len(result)} values" if isinstance(result, tuple | list) else repr(result)
            raise ReturnsError(
                path,
                f"returns names {len(self.returns)} values "
                f"({', '.join(r.name for r in self.returns)}) but the function returned {got}",
            )
        return {r.name: value for r, value in zip(self.returns, result, strict=True)}


STEP_FRAMES.add(AsyncPythonTask.run_alone.__code__)  # a stuck run's warning names its steps
