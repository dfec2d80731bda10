"""A subclass that drives its coroutine function its own way (``_call_coroutine``, as
compat's does) is asked for every call, though a plain task's function is called inline."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from runnable_trio import AsyncPipeline, AsyncPythonTask, Map, Parallel
from tests.helpers import run


class _Doubling(AsyncPythonTask):
    """Doubles what its function gives back: only its own ``_call_coroutine`` does that."""

    def _call_coroutine(self, kwargs: dict[str, Any]) -> Awaitable[Any]:
        async def doubled() -> Any:
            return 2 * await self.function(**kwargs)

        return doubled()


async def _plus_one(n: int) -> int:
    return n + 1


def test_only_a_task_without_its_own_call_calls_its_function_inline() -> None:
    assert AsyncPythonTask("plain", _plus_one)._calls_directly
    assert not _Doubling("own", _plus_one)._calls_directly


async def test_the_subclass_call_is_used_as_a_step_of_a_chain() -> None:
    log = await run(AsyncPipeline([_Doubling("d", _plus_one, returns=["n"])]), parameters={"n": 1})
    assert log.parameters_out["n"] == 4


async def test_the_subclass_call_is_used_as_a_map_item_and_a_parallel_branch() -> None:
    task = _Doubling("d", _plus_one, returns=["m"])
    assert task.runs_alone  # these branches run as its run_alone
    mapped = AsyncPipeline([Map("each", "ns", "n", task.as_async_pipeline())])
    log = await run(mapped, parameters={"ns": [1, 2]})
    assert log.parameters_out["m"] == [4, 6]
    fanned = AsyncPipeline([Parallel("fan", {"a": task.as_async_pipeline()})])
    log = await run(fanned, parameters={"n": 5})
    assert log.parameters_out["m"] == 12
