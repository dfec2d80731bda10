"""A wide Parallel's definition, through the shared-description paths, is the generic one's."""

from __future__ import annotations

from runnable_trio import AsyncPipeline, AsyncPythonTask, Parallel
from runnable_trio._definition import definition_of, hash_definition
from runnable_trio._deftext import definition_text
from runnable_trio._jsoncodec import dumps

from .helpers import library_calls


async def _noop() -> None:
    return None


def _wide(shared: bool) -> AsyncPipeline:
    task = AsyncPythonTask(name="t", function=_noop)
    branches = {
        f'b"{i}\\é': (
            task if shared else AsyncPythonTask(name="t", function=_noop)
        ).as_async_pipeline()
        for i in range(1000)
    }
    inner = Parallel("inner", branches=dict(list(branches.items())[:3]))
    branches["nested"] = AsyncPipeline([inner])
    return AsyncPipeline([Parallel("fan", branches=branches)])


def test_wide_definitions_match_the_generic_path() -> None:
    for shared in (True, False):
        pipeline = _wide(shared)
        definition, digest = definition_of(pipeline)
        generic = pipeline.describe()  # no context: every description made anew
        assert definition == generic
        assert digest == hash_definition(generic)
        assert definition_text(definition) == dumps(generic)


#: The library's calls per branch of a fresh Parallel whose branches share one task, to
#: describe, hash and write its definition: the branch's pipeline described (describe_pipeline
#: itself, called from the mapping's loop: 1) and its one step (describe_step: 1); its hash
#: and text reuse the shared step's text without a call. Measured: 2.0 (6.0 before).
SHARED_BRANCH_CALLS = 2


def _definition_calls(width: int) -> int:
    task = AsyncPythonTask(name="t", function=_noop)
    pipeline = AsyncPipeline(
        [Parallel("fan", branches={f"b{i}": task.as_async_pipeline() for i in range(width)})]
    )
    with library_calls() as calls:
        definition, _ = definition_of(pipeline)
        definition_text(definition)
    return calls[0]


def test_a_shared_branch_costs_few_calls_to_describe() -> None:
    small, big = _definition_calls(100), _definition_calls(300)
    per_branch = (big - small) / 200
    assert round(per_branch) <= SHARED_BRANCH_CALLS, (
        f"a shared Parallel branch makes {per_branch:.2f} calls to be described"
    )
