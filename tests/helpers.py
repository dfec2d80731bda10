"""Helpers shared by the test modules (``run``/``run_failing`` on runnable_trio.testing)."""

from __future__ import annotations

import gc
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import runnable_trio
from runnable_trio import AsyncPipeline, AsyncPythonTask, RunLog
from runnable_trio.testing import assert_final, run_to_end


async def collect(pipeline: AsyncPipeline, **kwargs: Any) -> list[dict[str, Any]]:
    """Every event of a run, through ``stream()``."""
    async with pipeline.stream(**kwargs) as events:
        return [event async for event in events]


def task(name: str, function: Any, *returns: str, **kwargs: Any) -> AsyncPipeline:
    """A one-task pipeline of ``function`` returning ``returns``."""
    return AsyncPythonTask(name, function, returns=list(returns), **kwargs).as_async_pipeline()


async def run(pipeline: AsyncPipeline, **kwargs: Any) -> RunLog:
    """Run ``pipeline`` to its end through ``stream()``; its run log, checked final.

    A failed run raises its ``ExecutionFailedError``, as iterating the stream does.
    """
    result = await run_to_end(pipeline, **kwargs)
    assert_final(result.run_log)
    if result.error is not None:
        raise result.error
    return result.run_log


async def run_failing(pipeline: AsyncPipeline, **kwargs: Any) -> tuple[BaseException, RunLog]:
    """Run ``pipeline``, which must fail; the cause of its failure and its run log (final)."""
    result = await run_to_end(pipeline, **kwargs)
    assert result.error is not None, (
        f"the run was expected to fail; it ended {result.run_log.status}"
    )
    assert result.cause is not None
    assert_final(result.run_log)
    return result.cause, result.run_log


class _Liveness(Protocol):
    def alive(self, run_id: str) -> bool | None: ...


def wait_until_dead(store: _Liveness, run_id: str, within: float = 10.0) -> bool:
    """Whether the killed process's run ``run_id`` shows dead, waiting a while if need be.

    A process probing git for a run's code identity forks a child that holds the parent's
    descriptors, its writer lock's included, until it execs git (descriptors are
    close-on-exec). A kill in that window leaves the lock held for as long as the orphan takes
    to exec: microseconds, longer on a loaded machine.
    """
    give_up = time.monotonic() + within
    while store.alive(run_id) is not False:
        if time.monotonic() > give_up:
            return False
        time.sleep(0.01)
    return True


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off in the block, then as it was: only reference
    counting frees anything there, so what is freed is freed at once."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def writers_swapped_for_a_symlink(writers: Path, spare: str) -> Path:
    """Move a store's ``.writers`` folder aside and plant a symlink at its name, to a folder
    holding a file named as the ``spare`` there was: that file (the victim) is returned."""
    elsewhere = writers.parent.parent / f"elsewhere-{writers.parent.name}"
    elsewhere.mkdir()
    victim = elsewhere / spare
    victim.write_text("not the store's\n")
    writers.rename(writers.parent.parent / f"moved-{writers.parent.name}")
    writers.symlink_to(elsewhere)
    return victim


#: Where the library's frames come from: its modules, and the methods attrs generates for
#: its classes (an ``__init__`` per record).
_OWN = (str(Path(runnable_trio.__file__).parent), "<attrs generated methods runnable_trio.")


@contextmanager
def library_calls() -> Iterator[list[int]]:
    """Counts the calls made in the block (``sys.setprofile``): the Python-level calls of
    runnable_trio's own functions into the list's first item, the builtins' calls (from any
    caller) into its second. A change that adds a frame per step, item or branch shows in a
    slope of these."""
    calls = [0, 0]

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code.co_filename.startswith(_OWN):
            calls[0] += 1
        elif event == "c_call":
            calls[1] += 1

    sys.setprofile(profile)
    try:
        yield calls
    finally:
        sys.setprofile(None)


def in_threads(target: Callable[[int], object], count: int) -> None:
    """Call ``target(index)`` for each index below ``count``, each in a thread; wait for all."""
    threads = [threading.Thread(target=target, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
