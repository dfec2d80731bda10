"""``AsyncPipeline`` whose streaming methods work from asyncio code as well as from Trio.

``execute_streaming()`` and ``stream()`` look at who calls them:

- from Trio (``trio.run``, Hypercorn's Trio worker), they are runnable_trio's, unchanged;
- from asyncio, the run goes into the loop's Trio guest run (``_guest.py``) and the events come
  back through a bounded hand-off to the asyncio consumer.

Either way the arguments are checked and the parameters read at the call, synchronously, so
the reference's "set ``os.environ``, then call" pattern is safe under concurrency, and leaving
the iteration in any way cancels the run.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

import sniffio

import runnable_trio
from runnable_trio import RunLog
from runnable_trio._stream import PreparedRun, open_stream, prepare_run

from ._guest import HostStream

__all__ = ["AsyncPipeline", "CompatStep", "HostRun", "called_from_trio"]


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
        super().__init__(lambda: open_stream(run), run.run_id, run.buffer_size)
        self.run_id = run.run_id
        self.run_log: RunLog = run.run_log


@contextlib.asynccontextmanager
async def _host_stream(run: HostRun) -> AsyncIterator[HostRun]:
    try:
        yield run
    finally:
        await run.aclose()


class AsyncPipeline(runnable_trio.AsyncPipeline):
    """runnable_trio's pipeline, streamable from asyncio code too (see the module docstring)."""

    __slots__ = ()

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
        store: runnable_trio.RunLogStore | None = None,
    ) -> Any:
        """Run the pipeline and iterate over its events: ``async for event in ...``.

        Arguments, return value and errors are those of
        :meth:`runnable_trio.AsyncPipeline.execute_streaming`; from asyncio code the iterator
        is a :class:`HostRun`.

        Raises:
            RunConfigurationError: at the call, for unusable parameters or ids.
            ExecutionFailedError: from the iteration, after the last event, if the run
                failed.
        """
        if called_from_trio():
            return super().execute_streaming(
                configuration_file,
                run_id,
                tag,
                parameters_file,
                log_level,
                parameters=parameters,
                attribution=attribution,
                buffer_size=buffer_size,
                event_log=event_log,
                store=store,
            )
        return HostRun(
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
        store: runnable_trio.RunLogStore | None = None,
    ) -> AbstractAsyncContextManager[Any]:
        """``async with pipeline.stream(...) as events: async for event in events:``.

        Leaving the block cancels the run if it is still going and waits for it to end.
        Arguments are those of :meth:`runnable_trio.AsyncPipeline.stream`.

        Raises:
            RunConfigurationError: at the call, for unusable parameters or ids.
            ExecutionFailedError: from the iteration, after the last event, if the run
                failed.
        """
        if called_from_trio():
            return super().stream(
                parameters=parameters,
                run_id=run_id,
                tag=tag,
                parameters_file=parameters_file,
                configuration_file=configuration_file,
                log_level=log_level,
                attribution=attribution,
                buffer_size=buffer_size,
                event_log=event_log,
                store=store,
            )
        run = prepare_run(
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
        return _host_stream(HostRun(run))


class CompatStep(runnable_trio._pipeline.BaseStep):
    """Mixin for steps of this package: ``as_async_pipeline()`` gives this package's pipeline."""

    __slots__ = ()

    def as_async_pipeline(self) -> AsyncPipeline:
        """A one-step pipeline of this step (the step object is shared, not copied)."""
        return AsyncPipeline([self], name=self.name)
