"""A Loop: ask a mock LLM to refine a draft until a reviewer is satisfied, at most five times.

Each iteration runs ``critique`` then ``rewrite``; the iteration index is bound to ``round``,
and what one iteration returns (``draft``, ``score``) is what the next one sees. The loop stops
as soon as ``rewrite`` sets ``good_enough`` to True, or after ``max_iterations`` rounds, and
gives back the last draft. Events name their iteration: ``refine.2.rewrite``.

Run it with ``python examples/loop_refine.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import trio

from runnable_trio import AsyncPipeline, AsyncPythonTask, Loop


async def critique(draft: str, round: int) -> str:
    await trio.sleep(0.1)
    return "too short" if len(draft.split()) < 8 else "fine"


async def rewrite(draft: str, feedback: str, round: int) -> AsyncIterator[dict[str, Any]]:
    yield {"type": "status", "status": f"round {round}: {feedback}"}
    await trio.sleep(0.2)
    if feedback == "fine":
        yield {"type": "done", "draft": draft, "good_enough": True}
        return
    longer = f"{draft} and then some more"
    for word in longer.split()[len(draft.split()) :]:
        yield {"type": "chunk", "text": word}
    yield {"type": "done", "draft": longer, "good_enough": False}


async def main() -> None:
    rounds = AsyncPipeline(
        [
            AsyncPythonTask("critique", critique, returns=["feedback"]),
            AsyncPythonTask("rewrite", rewrite, returns=["draft", "good_enough"]),
        ]
    )
    pipeline = AsyncPipeline(
        [Loop("refine", rounds, max_iterations=5, break_on="good_enough", index_as="round")]
    )
    run = pipeline.execute_streaming(parameters={"draft": "A first idea"}, attribution=True)
    async for event in run:
        if event["type"] == "status":
            print(f"{event['_meta']['step']:<20} {event['status']}")
    steps = run.run_log.steps["refine"]
    print(f"{len(steps.branches)} rounds; final draft: {run.run_log.parameters_out['draft']!r}")


if __name__ == "__main__":
    trio.run(main)
