"""``AsyncPythonTask`` for asyncio-flavoured functions.

The step is runnable_trio's task; only how the function is driven changes. Its coroutines and
async generators run as asyncio tasks:

- on an asyncio host (``asyncio.run``, uvicorn), on the host loop itself, the one the Trio
  engine is a guest of, so objects bound to that loop (a client made at start-up, a lock, a
  queue) work inside the function;
- on a Trio host (``trio.run``, Hypercorn's Trio worker), on a trio-asyncio loop: the one the
  caller opened (``trio_asyncio.open_loop()``), or else one opened around the step. Opening a
  loop costs about 0.7 ms, so a Trio application running many such steps opens one itself
  around its work (``async with trio_asyncio.open_loop(): await serve(app, config)``): the
  tasks started inside inherit it, and every step uses it.

trio-asyncio is imported only on the second path: importing it patches asyncio's loop functions
for the whole process (``asyncio.new_event_loop()`` then builds trio-asyncio loops), which an
asyncio application must not get as a side effect of ``import runnable``.

A plain ``def`` still runs in a worker thread, as in runnable_trio.

Three rules are the reference's rather than runnable_trio's, for code written against it:

- **The end event maps by position.** The ``stream_end_type`` event's keys other than
  ``type``, in order, are the generator's result: one key gives its value whatever it is
  called, several give a tuple; that result maps onto ``returns`` as a coroutine's return
  value does. Where names and positions disagree (``{"type": "done", "b": 2, "a": 1}`` with
  ``returns=["a", "b"]``), position wins (``a == 2``), as in the reference, and a warning is
  logged; runnable_trio itself maps by name.
- **A function's own exception is wrapped** in :class:`~runnable.exceptions.CommandCallError`
  (its ``__cause__``), which is the ``__cause__`` of the run's ``ExecutionFailedError``.
- ``command`` (``module.qualname``) and ``command_type`` (``"async-python"``) describe the
  function for introspecting code.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import runnable_trio

from ._aio import await_on_loop, iterate_on_loop
from ._guest import host_loop
from ._pipeline import CompatStep
from .exceptions import CommandCallError

if TYPE_CHECKING:
    from runnable_trio.hosting import RunContext

__all__ = ["AsyncPythonTask"]

T = TypeVar("T")

logger = logging.getLogger("runnable")


def _trio_asyncio_loop() -> asyncio.AbstractEventLoop | None:
    import trio_asyncio  # type: ignore[import-untyped]

    loop: asyncio.AbstractEventLoop | None = trio_asyncio.current_loop.get()
    return loop


def _loop_here() -> asyncio.AbstractEventLoop | None:
    """The asyncio loop a function of this step runs on, if there is one already."""
    return host_loop() or _trio_asyncio_loop()


async def _in_new_loop(start: Callable[[asyncio.AbstractEventLoop], Awaitable[T]]) -> T:
    """``await start(loop)`` on a trio-asyncio loop opened around it (a Trio host with none).

    The step's own error is carried past the loop's nurseries, which would wrap it in
    exception groups.
    """
    import trio_asyncio

    failure: Exception | None = None
    async with trio_asyncio.open_loop() as loop:
        try:
            result = await start(loop)
        except Exception as exc:
            failure = exc
    if failure is not None:
        raise failure
    return result


def _command_error(exc: Exception, path: str) -> CommandCallError:
    """The reference's error for a function that raised ``exc`` (raise it ``from exc``)."""
    return CommandCallError(path, f"{type(exc).__name__}: {exc}")


class AsyncPythonTask(CompatStep, runnable_trio.AsyncPythonTask):
    """runnable_trio's task, calling an asyncio-flavoured function (see the module docstring).

    Arguments are those of :class:`runnable_trio.AsyncPythonTask`.

    Only how the function is driven is overridden (the base class's extension points), not
    how a step runs: a branch made of one such task still runs as ``run_alone``.
    """

    __slots__ = ()

    @property
    def command(self) -> str:
        """The function's dotted path, ``module.qualname`` (the reference's attribute)."""
        function = self.function
        module = getattr(function, "__module__", None) or type(function).__module__
        qualname = getattr(function, "__qualname__", None) or type(function).__qualname__
        return f"{module}.{qualname}"

    @property
    def command_type(self) -> str:
        """``"async-python"``, as the reference names the kind of this task."""
        return "async-python"

    async def _guard_call(self, call: Awaitable[Any], path: str) -> Any:
        # A coroutine's or a plain def's call (a fault plan's faults around it, if any).
        try:
            return await call
        except runnable_trio.RunnableError:
            raise  # the framework's own (parameters, returns, cancelled host tasks)
        except Exception as exc:
            raise _command_error(exc, path) from exc

    def _call_coroutine(self, kwargs: dict[str, Any]) -> Awaitable[Any]:
        # The coroutine itself, not awaited here: one frame less for each step's task.
        function = self.function
        loop = _loop_here()
        if loop is None:
            return _in_new_loop(lambda opened: await_on_loop(opened, function, kwargs))
        return await_on_loop(loop, function, kwargs)

    def _open_generator(self, kwargs: dict[str, Any]) -> AsyncGenerator[Any, None]:
        loop = _loop_here()
        assert loop is not None, "_stream opens a loop before the generator is opened"
        return iterate_on_loop(loop, self.function(**kwargs))

    async def _stream(
        self, ctx: RunContext, kwargs: dict[str, Any], path: str, faults: Any = None
    ) -> Mapping[str, Any] | None:
        stream = super()._stream
        try:
            if _loop_here() is None:
                return await _in_new_loop(lambda _: stream(ctx, kwargs, path, faults))
            return await stream(ctx, kwargs, path, faults)
        except runnable_trio.RunnableError:
            raise  # the framework's own (events, timeouts, cancelled host tasks)
        except Exception as exc:
            raise _command_error(exc, path) from exc

    def _end_event_values(self, end: Mapping[str, Any] | None, path: str) -> dict[str, Any]:
        # The reference's rule (see the module docstring): by position, not by name.
        if not self.returns or end is None:
            return super()._end_event_values(end, path)
        keys = [key for key in end if key != "type"]
        if not keys:
            raise runnable_trio.ReturnsError(
                path,
                f"the {self.stream_end_type!r} event carries no value besides 'type', so "
                f"{', '.join(r.name for r in self.returns)} could not be set",
            )
        names = [r.name for r in self.returns]
        if keys != names and sorted(keys) == sorted(names):
            logger.warning(
                "step %r: the %r event's keys %s map onto returns %s by position (the "
                "reference's rule), not by name",
                path, self.stream_end_type, keys, names,
            )  # fmt: skip
        result = end[keys[0]] if len(keys) == 1 else tuple(end[key] for key in keys)
        return self._positional_values(result, path)
