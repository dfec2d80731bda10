"""The reference's Parallel translation example, on Trio: generate a text, translate it twice.

``generate`` streams a mock LLM answer and sets ``full_text``. The ``translate_parallel`` step
then runs its ``spanish`` and ``french`` branches at the same time: both see ``full_text``
(each branch starts with a copy of its parent's parameters), their events interleave in the
stream as they happen, and their results merge back for the ``combine`` step. With attribution
on, each event names the branch it came from, e.g. ``translate_parallel.spanish.spanish``.

Run it with ``python examples/parallel_translate.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import trio

from runnable_trio import AsyncPipeline, AsyncPythonTask, Parallel


async def mock_llm_stream(prompt: str) -> AsyncIterator[dict[str, Any]]:
    """Answer ``prompt`` word by word, like a streaming LLM client would."""
    yield {"type": "status", "status": "thinking"}
    await trio.sleep(0.3)
    response = f"Response to: {prompt}"
    for word in response.split():
        yield {"type": "chunk", "text": word + " "}
        await trio.sleep(0.05)
    yield {"type": "done", "full_text": response}


async def translate_spanish(full_text: str) -> AsyncIterator[dict[str, Any]]:
    yield {"type": "status", "message": "Translating to Spanish"}
    await trio.sleep(0.5)
    yield {"type": "done", "spanish_translation": f"ES: {full_text}"}


async def translate_french(full_text: str) -> AsyncIterator[dict[str, Any]]:
    yield {"type": "status", "message": "Translating to French"}
    await trio.sleep(0.4)
    yield {"type": "done", "french_translation": f"FR: {full_text}"}


async def combine(spanish_translation: str, french_translation: str) -> str:
    return f"{spanish_translation}\n{french_translation}"


async def main() -> None:
    pipeline = AsyncPipeline(
        steps=[
            AsyncPythonTask(name="generate", function=mock_llm_stream, returns=["full_text"]),
            Parallel(
                name="translate_parallel",
                branches={
                    "spanish": AsyncPythonTask(
                        name="spanish", function=translate_spanish, returns=["spanish_translation"]
                    ).as_async_pipeline(),
                    "french": AsyncPythonTask(
                        name="french", function=translate_french, returns=["french_translation"]
                    ).as_async_pipeline(),
                },
            ),
            AsyncPythonTask(name="combine", function=combine, returns=["both"]),
        ]
    )
    run = pipeline.execute_streaming(
        parameters={"prompt": "Say hello to the world"}, attribution=True
    )
    start = trio.current_time()
    async for event in run:
        if not event["type"].startswith(("run.", "step.")):
            elapsed = trio.current_time() - start
            fields = {k: v for k, v in event.items() if k not in ("type", "_meta")}
            print(f"{elapsed:5.2f}s {event['_meta']['step']:<32} {event['type']}: {fields}")
    print(run.run_log.parameters_out["both"])


if __name__ == "__main__":
    trio.run(main)
