"""Attacks on the per-pipeline description cache (``_definition.definition_of``, keyed by
``id`` with a ``weakref.ref`` whose callback drops the entry): a pipeline that goes and a new
one given its id, by reference counting or by the cyclic GC, must get its own description and
hash, never the old one's; and threads describing pipelines at once each get their own."""

from __future__ import annotations

import gc
import threading
from typing import Any

from runnable_trio import AsyncPipeline, AsyncPythonTask, Parallel
from runnable_trio._definition import _described, definition_of, hash_definition

from .helpers import in_threads


async def work() -> None:
    return None


def _pipeline(label: str) -> AsyncPipeline:
    return AsyncPipeline([AsyncPythonTask(f"step-{label}", work)], name=f"p-{label}")


def _fresh(pipeline: AsyncPipeline) -> tuple[dict[str, Any], str]:
    definition = pipeline.describe()
    return definition, hash_definition(definition)


def _reused_id(make: Any, gone_id: int, tries: int = 2000) -> AsyncPipeline | None:
    """A new pipeline given the id ``gone_id`` (CPython reuses freed memory), if one is."""
    kept = []
    for index in range(tries):
        pipeline = make(index)
        if id(pipeline) == gone_id:
            return pipeline
        kept.append(pipeline)  # held: the next one takes other memory
    return None


def test_a_pipeline_made_where_a_gone_one_was_gets_its_own_description() -> None:
    old = _pipeline("old")
    assert definition_of(old)[0]["name"] == "p-old"
    gone = id(old)
    del old  # reference counting: freed here, its entry with it
    assert gone not in _described
    new = _reused_id(lambda i: _pipeline(f"new{i}"), gone)
    if new is None:  # CPython gave the memory elsewhere: still no stale entry
        return
    assert definition_of(new) == _fresh(new)
    assert definition_of(new)[0]["name"] != "p-old"


def test_a_pipeline_collected_in_a_cycle_leaves_no_description_for_its_id() -> None:
    # The pipeline is freed by the cyclic GC (a step's function holds the pipeline in an
    # attribute): the weak reference's callback runs before the memory can be reused.
    gc.disable()
    try:

        async def holding() -> None:
            return None

        old = AsyncPipeline([AsyncPythonTask("cyclic", holding)], name="in-a-cycle")
        holding.pipeline = old  # type: ignore[attr-defined]
        assert definition_of(old)[0]["name"] == "in-a-cycle"
        gone = id(old)
        del old, holding
        assert gone in _described  # not freed yet: a cycle
        gc.collect()
        assert gone not in _described
        new = _reused_id(lambda i: _pipeline(f"after{i}"), gone)
        if new is not None:
            assert definition_of(new) == _fresh(new)
    finally:
        gc.enable()


def test_the_same_steps_in_a_new_pipeline_are_described_for_it() -> None:
    # Steps shared by two pipelines, the first gone: the second's description is its own
    # (its name, its order), whatever the first cached.
    a, b = AsyncPythonTask("a", work), AsyncPythonTask("b", work)
    first = AsyncPipeline([a, b], name="first")
    definition_of(first)
    del first
    second = AsyncPipeline([b, a], name="second")
    assert definition_of(second) == _fresh(second)
    assert [step["name"] for step in definition_of(second)[0]["steps"]] == ["b", "a"]


def test_threads_describing_pipelines_at_once_each_get_their_own() -> None:
    start = threading.Barrier(8)
    problems: list[str] = []
    task = AsyncPythonTask("shared", work)

    def describe(index: int) -> None:
        start.wait()
        for round_ in range(50):
            label = f"{index}-{round_}"
            branches = {f"b{k}": task.as_async_pipeline() for k in range(index + 1)}
            pipeline = AsyncPipeline([Parallel("fan", branches)], name=label)
            got = definition_of(pipeline)
            if got != _fresh(pipeline):
                problems.append(f"{label}: {got[0]['name']}")
            del pipeline, got  # freed now: its id free for another thread's next one

    in_threads(describe, 8)
    assert problems == []
