"""Classes only the library builds have no public constructor; classes not meant for
subclassing are ``@final`` (as Trio does for its channels)."""

from __future__ import annotations

import pytest

import runnable_trio
from runnable_trio import AsyncPythonTask, MemoryRunLogStore
from runnable_trio._events import EventSink
from runnable_trio.hosting import PreparedRun, RunOptions, prepare_run, start_streaming


async def noop() -> None:
    pass


@pytest.mark.parametrize(
    ("cls", "builder"),
    [
        (runnable_trio.StreamingRun, "execute_streaming()"),
        (runnable_trio.EventStream, "stream()"),
        (runnable_trio.Replay, "replay()"),
    ],
)
def test_a_class_the_library_builds_refuses_a_direct_call(cls: type, builder: str) -> None:
    with pytest.raises(TypeError, match="no public constructor") as caught:
        cls()
    assert builder in str(caught.value)


async def test_the_library_still_builds_them() -> None:
    pipeline = AsyncPythonTask("n", noop).as_async_pipeline()
    run = start_streaming(prepare_run(pipeline, RunOptions.check(store=MemoryRunLogStore())))
    assert isinstance(run, runnable_trio.StreamingRun)
    assert [e async for e in run] == []
    assert isinstance(
        pipeline.execute_streaming(store=MemoryRunLogStore()), runnable_trio.StreamingRun
    )


@pytest.mark.parametrize(
    "cls",
    [
        runnable_trio.StreamingRun,
        runnable_trio.EventStream,
        PreparedRun,
        RunOptions,
        EventSink,
    ],
)
def test_classes_not_meant_for_subclassing_are_final(cls: type) -> None:
    assert getattr(cls, "__final__", False) is True
