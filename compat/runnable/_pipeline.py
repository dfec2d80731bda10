"""``AsyncPipeline`` whose streaming methods work from asyncio code as well as from Trio.

``execute_streaming()`` and ``stream()`` look at who calls them:

- from Trio (``trio.run``, Hypercorn's Trio worker), they are runnable_trio's, unchanged;
- from asyncio, the run goes into the loop's Trio guest run (``_guest.py``) and the events come
  back through a bounded hand-off to the asyncio consumer.

Either way the arguments are checked and the parameters read at the call, synchronously, so
the reference's "set ``os.environ``, then call" pattern is safe under concurrency, and leaving
the iteration in any way cancels the run.

The reference's environment variables are read at the call too (never written):
``RUNNABLE_RETRY_RUN_ID`` makes the call a retry of that run (it wins over everything);
``RUNNABLE_CONFIGURATION_FILE`` and ``RUNNABLE_PARAMETERS_FILE`` win over the arguments;
``RUNNABLE_RUN_ID`` is the run id when the argument is empty. A run given no id gets one in the
reference's shape (:func:`runnable.names.run_id`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

import attrs
import sniffio

import runnable_trio
from runnable_trio import EventStream, RunConfigurationError, RunLog
from runnable_trio.hosting import (
    BaseStep,
    PreparedRun,
    RunOptions,
    check_called_from_trio,
    check_positional_arguments,
    open_stream,
    prepare_retry,
    prepare_run,
    start_streaming,
)

from . import defaults, names
from ._guest import HostStream
from .exceptions import RetryValidationError, RunLogExistsError, RunLogNotFoundError

__all__ = [
    "AsyncPipeline",
    "CompatStep",
    "HostRetry",
    "HostRun",
    "called_from_trio",
    "retry_stream",
    "retry_streaming",
]


def called_from_trio() -> bool:
    try:
        return sniffio.current_async_library() == "trio"
    except sniffio.AsyncLibraryNotFoundError:
        return False


class HostRun(HostStream):
    """What ``execute_streaming()`` returns to asyncio code: ``async for event in run:``.

    Safe to ``break`` out of; ``aclose()``, a cancelled consumer task or an
    ``asyncio.timeout`` cancel the run and wait for it to end.

    Attributes:
        run_id: the run's id (known before the run starts).
        run_log: the run's live record; final once the iteration has ended.
    """

    def __init__(self, run: PreparedRun) -> None:
        super().__init__(lambda: open_stream(run), run.run_id, run.buffer_size, run=run)
        self.run_id = run.run_id
        self.run_log: RunLog = run.run_log


class HostRetry(HostStream):
    """What ``retry_streaming()`` returns to asyncio code: ``async for event in run:``.

    Attributes:
        run_id: the retried run's id.
        run_log: the run's record: the recorded one until the retry starts, then the live
            one, final once the iteration has ended.
    """

    def __init__(
        self,
        run_id: str,
        events: AbstractAsyncContextManager[EventStream],
        run: PreparedRun | None = None,
    ) -> None:
        self.run_id = run_id
        self.run_log: RunLog | None = None

        @contextlib.asynccontextmanager
        async def opened() -> AsyncIterator[EventStream]:
            async with events as stream:
                self.run_log = stream.run_log
                yield stream

        super().__init__(opened, run_id, RETRY_CAPACITY, run=run)


#: Events of a retry that may wait for the asyncio consumer.
RETRY_CAPACITY = 256


@contextlib.asynccontextmanager
async def _host_stream(run: HostStream) -> AsyncIterator[Any]:
    try:
        yield run
    finally:
        await run.aclose()


def _configuration(argument: str) -> str:
    return os.environ.get(defaults.RUNNABLE_CONFIGURATION_FILE) or argument


def _run_id(argument: str | None) -> str:
    return argument or os.environ.get(defaults.ENV_RUN_ID) or names.run_id()


def _recorded(run_id: str, configuration_file: str) -> bool:
    try:
        runnable_trio.read_run_log(run_id, configuration_file=configuration_file)
    except RunConfigurationError:
        return False
    return True


def _prepared(start: Callable[[], Any], run_id: str, configuration_file: str) -> Any:
    """``start()``, with a reused run id raised as the reference's ``RunLogExistsError``."""
    try:
        return start()
    except RunConfigurationError as exc:
        if "already exists" in str(exc) or _recorded(run_id, configuration_file):
            raise RunLogExistsError(run_id) from exc
        raise


def _retry_checked(start: Callable[[], Any], run_id: str) -> Any:
    """``start()``, with the reasons a run cannot be retried raised as the reference's errors."""
    try:
        return start()
    except RunConfigurationError as exc:
        message = str(exc)
        if message.startswith("no run with id"):
            raise RunLogNotFoundError(run_id) from exc
        if message.startswith(f"run {run_id!r}"):  # succeeded, still going, another pipeline
            raise RetryValidationError(message) from exc
        raise


def retry_streaming(
    pipeline: runnable_trio.AsyncPipeline,
    run_id: str,
    configuration_file: str = "",
    log_level: int | str = "WARNING",
    *,
    attribution: bool = False,
    buffer_size: int | None = None,
    event_log: bool | None = None,
    store: runnable_trio.RunLogStore | None = None,
) -> HostRetry | runnable_trio.StreamingRun:
    """Retry the failed run ``run_id``: ``async for event in retry_streaming(pipeline, id):``.

    Arguments are those of :func:`runnable_trio.retry_streaming`; from asyncio code the
    iterator is a :class:`HostRetry`, from Trio runnable_trio's ``StreamingRun``.

    Raises:
        RunLogNotFoundError: at the call, no run with this id.
        RetryValidationError: at the call, the run succeeded, is still going or ran another
            pipeline.
        ExecutionFailedError: from the iteration, if the retry fails again.
    """
    options = RunOptions.check(
        configuration_file=_configuration(configuration_file),
        log_level=log_level,
        attribution=attribution,
        buffer_size=buffer_size,
        event_log=event_log,
        store=store,
    )
    run: HostRetry | runnable_trio.StreamingRun = _start_retry(
        pipeline, run_id, options, iterator=True
    )
    return run


def retry_stream(
    pipeline: runnable_trio.AsyncPipeline,
    run_id: str,
    *,
    configuration_file: str = "",
    log_level: int | str = "WARNING",
    attribution: bool = False,
    buffer_size: int | None = None,
    event_log: bool | None = None,
    store: runnable_trio.RunLogStore | None = None,
) -> AbstractAsyncContextManager[HostStream | EventStream]:
    """``async with retry_stream(pipeline, run_id) as events:``, from asyncio or Trio.

    Arguments and errors are those of :func:`retry_streaming`.
    """
    options = RunOptions.check(
        configuration_file=_configuration(configuration_file),
        log_level=log_level,
        attribution=attribution,
        buffer_size=buffer_size,
        event_log=event_log,
        store=store,
    )
    block: AbstractAsyncContextManager[HostStream | EventStream] = _start_retry(
        pipeline, run_id, options, iterator=False
    )
    return block


def _start_retry(
    pipeline: runnable_trio.AsyncPipeline, run_id: str, options: RunOptions, *, iterator: bool
) -> Any:
    """A retry, as the caller's surface gives it (an iterator or a block) to Trio or asyncio."""
    prepared = _retry_checked(lambda: prepare_retry(pipeline, run_id, options), run_id)
    if called_from_trio():
        return start_streaming(prepared) if iterator else open_stream(prepared)
    run = HostRetry(run_id, open_stream(prepared), prepared)
    return run if iterator else _host_stream(run)


def _start_run(
    pipeline: runnable_trio.AsyncPipeline, options: RunOptions, *, iterator: bool
) -> Any:
    """A new run, as the caller's surface gives it (an iterator or a block) to Trio or asyncio.

    The reference's environment variables are applied to ``options`` here, at the call.
    """
    configuration_file = _configuration(options.configuration_file)
    retry_of = os.environ.get(defaults.RETRY_RUN_ID)
    if retry_of:
        retry = RunOptions.check(
            configuration_file=configuration_file,
            log_level=options.log_level,
            attribution=options.attribution,
            buffer_size=options.buffer_size,
            event_log=options.event_log,
            store=options.store,
        )
        return _start_retry(pipeline, retry_of, retry, iterator=iterator)
    run_id = _run_id(options.run_id)
    options = attrs.evolve(
        options,
        configuration_file=configuration_file,
        parameters_file=(
            os.environ.get(defaults.RUNNABLE_PARAMETERS_FILE) or options.parameters_file
        ),
        run_id=run_id,
    )
    trio_side = called_from_trio()
    if trio_side:
        check_called_from_trio("execute_streaming()" if iterator else "stream()")
    prepared = _prepared(lambda: prepare_run(pipeline, options), run_id, configuration_file)
    if trio_side:
        return start_streaming(prepared) if iterator else open_stream(prepared)
    run = HostRun(prepared)
    return run if iterator else _host_stream(run)


class AsyncPipeline(runnable_trio.AsyncPipeline):
    """runnable_trio's pipeline, streamable from asyncio code too (see the module docstring)."""

    __slots__ = ()

    def execute_streaming(  # type: ignore[override]
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
        store: runnable_trio.RunLogStore | None = None,
    ) -> HostRun | HostRetry | runnable_trio.StreamingRun:
        # Broader than runnable_trio's on purpose: from asyncio code the iterator is a HostRun.
        """Run the pipeline and iterate over its events: ``async for event in ...``.

        Arguments, return value and errors are those of
        :meth:`runnable_trio.AsyncPipeline.execute_streaming`; from asyncio code the iterator
        is a :class:`HostRun`.

        Raises:
            RunConfigurationError: at the call, for unusable parameters or ids.
            ExecutionFailedError: from the iteration, after the last event, if the run
                failed.
        """
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
        run: HostRun | HostRetry | runnable_trio.StreamingRun = _start_run(
            self, options, iterator=True
        )
        return run

    def stream(  # type: ignore[override]
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
        store: runnable_trio.RunLogStore | None = None,
    ) -> AbstractAsyncContextManager[HostStream | EventStream]:
        # Broader than runnable_trio's on purpose: from asyncio code the events are a HostRun.
        """``async with pipeline.stream(...) as events: async for event in events:``.

        Leaving the block cancels the run if it is still going and waits for it to end.
        Arguments are those of :meth:`runnable_trio.AsyncPipeline.stream`.

        Raises:
            RunConfigurationError: at the call, for unusable parameters or ids.
            ExecutionFailedError: from the iteration, after the last event, if the run
                failed.
        """
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
        block: AbstractAsyncContextManager[HostStream | EventStream] = _start_run(
            self, options, iterator=False
        )
        return block


class CompatStep(BaseStep):
    """Mixin for steps of this package: ``as_async_pipeline()`` gives this package's pipeline."""

    __slots__ = ()

    def as_async_pipeline(self) -> AsyncPipeline:
        """A one-step pipeline of this step (the step object is shared, not copied)."""
        return AsyncPipeline([self], name=self.name)
