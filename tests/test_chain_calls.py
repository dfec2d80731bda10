"""A step of a chain costs few calls of the library's own functions (bench W2).

Each Python-level call is a frame made and dropped: a change that adds one per step (a helper,
a method of a record) fails here rather than in a benchmark. The figure is a slope (the calls
at two lengths of chain), so what a run does once does not blur it; only frames of
``runnable_trio`` are counted, as in ``test_item_calls``.
"""

from __future__ import annotations

from typing import Any

import pytest

from runnable_trio import AsyncPipeline, AsyncPythonTask, MemoryRunLogStore
from runnable_trio.testing import run_to_end

from .helpers import library_calls

LENGTHS = (20, 60)

#: The library's calls per step of a chain of plain tasks, on the memory store: run_step (1),
#: its two records' attrs __init__ (2), _execute (1), the arguments bound (Scope.arguments,
#: Binder.bind: 2) and the results published (1). The attempt's end and what follows a
#: success (a reused step's too) are inline in run_step, the call of the function in _execute.
MEMORY_STORE_CALLS = 7
#: The builtins' calls per step of that chain (any caller's): the step's path added to and
#: taken from the running steps (2), the attempt numbered and added (2), and the two
#: records' ``object.__new__`` (2: their classes are not called, see ``_runlog.new_record``).
#: Not a ``getattr`` of the retry policy (read once an attempt failed), nor a lookup of the
#: earlier attempt's records outside a retry of a run, nor ``dict.update`` as the results
#: reach the scope and the records (``|=``; the attempt takes the arguments' dict itself).
MEMORY_STORE_BUILTIN_CALLS = 6
#: The same, on the file store, with the step's journal line and what is kept of it for the
#: final record (11).
FILE_STORE_CALLS = 18


async def _step(x: int) -> int:
    return x + 1


async def _calls(length: int, store: Any) -> tuple[int, int]:
    """The library's calls, and the builtins' calls, in a run of a chain of ``length`` steps
    (its second run)."""
    pipeline = AsyncPipeline(
        [AsyncPythonTask(name=f"s{i}", function=_step, returns=["x"]) for i in range(length)]
    )
    extra = {} if store is None else {"store": store}
    await run_to_end(pipeline, parameters={"x": 0}, **extra)  # described on its first run
    with library_calls() as calls:
        result = await run_to_end(pipeline, parameters={"x": 0}, **extra)
    assert result.cause is None
    assert result.run_log.parameters_out["x"] == length
    return calls[0], calls[1]


@pytest.mark.parametrize(
    ("store", "most"),
    [(MemoryRunLogStore(), MEMORY_STORE_CALLS), (None, FILE_STORE_CALLS)],
    ids=["memory", "file"],
)
async def test_a_chain_step_makes_few_calls_of_the_library(store: Any, most: int) -> None:
    (small, _), (big, _) = [await _calls(length, store) for length in LENGTHS]
    per_step = (big - small) / (LENGTHS[1] - LENGTHS[0])
    assert round(per_step) <= most, f"a chain step makes {per_step:.2f} calls of runnable_trio"


async def test_a_chain_step_makes_few_calls_of_builtins() -> None:
    (_, small), (_, big) = [await _calls(length, MemoryRunLogStore()) for length in LENGTHS]
    per_step = (big - small) / (LENGTHS[1] - LENGTHS[0])
    assert round(per_step) <= MEMORY_STORE_BUILTIN_CALLS, (
        f"a chain step makes {per_step:.2f} calls of builtins"
    )
