"""The reference's Map-over-languages example, on Trio: one branch per language, concurrently.

``generate_text`` sets ``full_text``; ``process_languages`` then runs the ``process_language``
branch once per item of the ``languages`` parameter, all at the same time, each seeing
``full_text`` and its own ``language``. The branch's ``result`` comes back as a list in the
order of ``languages``, whatever order the items finished in. ``max_concurrency`` bounds how
many items run at once (two here).

Run it with ``python examples/map_languages.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import trio

from runnable_trio import AsyncPipeline, AsyncPythonTask, Map


async def mock_llm_stream(prompt: str) -> AsyncIterator[dict[str, Any]]:
    """Answer ``prompt`` in one go, like a (fast) LLM client would."""
    yield {"type": "status", "status": "thinking"}
    await trio.sleep(0.3)
    yield {"type": "done", "full_text": f"Response to: {prompt}"}


async def process_item(full_text: str, language: str) -> AsyncIterator[dict[str, Any]]:
    yield {"type": "status", "message": f"Processing {language}"}
    await trio.sleep(0.1 * len(language))  # longer names take longer: completion order varies
    yield {"type": "done", "result": f"[{language.upper()}] {full_text}"}


async def main() -> None:
    process_branch = AsyncPythonTask(
        name="process_language", function=process_item, returns=["result"]
    ).as_async_pipeline()
    pipeline = AsyncPipeline(
        steps=[
            AsyncPythonTask(name="generate_text", function=mock_llm_stream, returns=["full_text"]),
            Map(
                name="process_languages",
                iterate_on="languages",
                iterate_as="language",
                branch=process_branch,
                max_concurrency=2,
            ),
        ]
    )
    parameters = {"prompt": "Good morning", "languages": ["spanish", "french", "german", "it"]}
    run = pipeline.execute_streaming(parameters=parameters, attribution=True)
    async for event in run:
        if event["type"] == "status" and "message" in event:
            print(f"{event['_meta']['step']:<40} {event['message']}")
    for result in run.run_log.parameters_out["result"]:
        print(result)


if __name__ == "__main__":
    trio.run(main)
