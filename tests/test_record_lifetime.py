"""A run's record is freed as soon as its stream has ended and nothing of the caller's holds
it: not in the next run, not after a collection.

The consumer is woken for the last time with the channel's ``EndOfChannel``, and Trio keeps
that wakeup until the task next waits; the exception's traceback (and its context's) holds
the stream's frames, hence the run and its record. A long run's record is tens of thousands
of objects: freed later, the next run pays for freeing it (the one-step run of bench W2 after
a 5,000-step one), and the collector walks it meanwhile.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator

import pytest

from runnable_trio import AsyncPipeline, AsyncPythonTask, RunLog

from .helpers import collector_paused


async def _step(x: int) -> int:
    return x + 1


_CHAIN = AsyncPipeline(
    [AsyncPythonTask(name=f"s{i}", function=_step, returns=["x"]) for i in range(3)]
)


@pytest.fixture
def _no_collection() -> Iterator[None]:
    """Only reference counting frees anything here: what is freed is freed at once."""
    with collector_paused():
        yield


async def _iterated(api: str) -> weakref.ref[RunLog]:
    if api == "stream":
        async with _CHAIN.stream(parameters={"x": 0}) as events:
            async for _ in events:
                pass
            return weakref.ref(events.run_log)
    run = _CHAIN.execute_streaming(parameters={"x": 0})
    async for _ in run:
        pass
    return weakref.ref(run.run_log)


@pytest.mark.usefixtures("_no_collection")
@pytest.mark.parametrize("api", ["execute_streaming", "stream"])
async def test_a_run_s_record_is_freed_once_its_stream_has_ended(api: str) -> None:
    record = await _iterated(api)
    # No checkpoint since the stream ended: this task has not waited again.
    assert record() is None
