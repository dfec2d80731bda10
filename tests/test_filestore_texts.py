"""The final record reuses the text of each step its journal wrote (a step encoded once):
the snapshot is still exactly what encoding the whole record gives. A long run's is written
a chunk at a time, never held whole."""

from __future__ import annotations

from typing import Any

import pytest

from runnable_trio import (
    AsyncPipeline,
    AsyncPythonTask,
    ExecutionFailedError,
    Map,
    Retry,
    _snapshot,
)
from runnable_trio._filestore import FileRunLogStore
from runnable_trio._steplines import run_record

from .helpers import collect


async def _item(x: int) -> int:
    return x * 2


async def _broken() -> None:
    raise ValueError("broke")


async def _ok() -> str:
    return "fine"


async def _step(x: int) -> int:
    return x + 1


def _snapshot_is_the_records_encoding(run_id: str) -> None:
    store = FileRunLogStore()
    text = store.snapshot_path(run_id).read_text()
    assert text == run_record(store.load(run_id), None)


async def test_a_map_and_a_recovered_steps_snapshot_is_the_whole_records_encoding() -> None:
    recovery = AsyncPythonTask("recover", _ok, returns=["r"]).as_async_pipeline()
    pipeline = AsyncPipeline(
        [
            AsyncPythonTask("a", _ok, returns=["x0"]),
            Map(
                "each",
                iterate_on="xs",
                iterate_as="x",
                branch=AsyncPythonTask("double", _item, returns=["y"]).as_async_pipeline(),
            ),
            # Its journal line is written before its on_failure branch goes in.
            AsyncPythonTask("b", _broken, on_failure=recovery),
        ]
    )
    await collect(pipeline, run_id="m", parameters={"xs": [1, 2, 3]})
    record = FileRunLogStore().load("m")
    assert record.steps["b"].branches  # its on_failure branch
    _snapshot_is_the_records_encoding("m")


async def test_a_step_retried_in_the_run_is_recorded_with_every_attempt() -> None:
    pipeline = AsyncPythonTask(
        "flaky", _broken, retry=Retry(attempts=3, backoff=0)
    ).as_async_pipeline()
    with pytest.raises(ExecutionFailedError):
        await collect(pipeline, run_id="f")
    assert len(FileRunLogStore().load("f").steps["flaky"].attempts) == 3
    _snapshot_is_the_records_encoding("f")


async def test_a_long_runs_snapshot_is_written_in_chunks_and_is_the_whole_records_encoding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A chain of 1,500 steps: a record of about 1 MB, its definition a third of it.
    chunks: list[int] = []
    create_new = _snapshot.create_new

    def counting(path: Any, data: Any, **options: Any) -> None:
        data = [data] if isinstance(data, bytes) else list(data)
        if path.name.endswith(_snapshot.TEMPORARY):
            chunks.extend(map(len, data))
        create_new(path, data, **options)

    monkeypatch.setattr(_snapshot, "create_new", counting)
    pipeline = AsyncPipeline([AsyncPythonTask(f"s{i}", _step, returns=["x"]) for i in range(1500)])
    await collect(pipeline, run_id="long", parameters={"x": 0})
    assert sum(chunks) > 512 * 1024  # the final snapshot's bytes
    # Chunks of about 64 KiB: a batch of parts (the first to reach the size ends it), or a
    # slice of the definition.
    assert max(chunks) < 128 * 1024
    _snapshot_is_the_records_encoding("long")
