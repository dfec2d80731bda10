"""A wide Parallel's definition, through the shared-description paths, is the generic one's."""

from __future__ import annotations

from runnable_trio import AsyncPipeline, AsyncPythonTask, Parallel
from runnable_trio._definition import definition_of, hash_definition
from runnable_trio._deftext import definition_text
from runnable_trio._jsoncodec import dumps


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
