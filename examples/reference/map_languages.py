"""Reference example "Map with Async Streaming", as written, through ``runnable``.

A mock LLM answers first; then one branch per language runs, all concurrently, each with the
language bound to ``language``. (The reference runs the items one after the other, with no
parameters, so its own version of this example fails.)

The snippet uses names from the examples above it on the reference page (``asyncio``,
``AsyncGenerator``, ``mock_llm_stream``): they are supplied first, marked as such, with
``mock_llm_stream`` imported from ``llm_stream.py`` beside this file. The parameters
``prompt``, ``text`` and ``languages`` (the list the comment in the snippet names) are
supplied as ``RUNNABLE_PRM_*`` environment variables (JSON values), set in the ``__main__``
block (existing values win).

Run it with ``python examples/reference/map_languages.py``.
"""

# The reference's code is kept as written: no reformatting, no lint rewrites.
# fmt: off
# ruff: noqa: UP035

# Supplied: names the snippet takes from the examples above it on the reference page.
import asyncio
from typing import AsyncGenerator

from llm_stream import mock_llm_stream

# The snippet, as written:
from runnable import AsyncPipeline, AsyncPythonTask, Map


async def process_item(text: str, language: str) -> AsyncGenerator[dict, None]:
    yield {"type": "status", "message": f"Processing {language}"}
    await asyncio.sleep(0.3)
    yield {"type": "done", "result": f"[{language.upper()}] {text}"}


async def main():
    # Branch that processes one language
    process_branch = AsyncPythonTask(
        name="process_language",
        function=process_item,
        returns=["result"]
    ).as_async_pipeline()

    pipeline = AsyncPipeline(
        steps=[
            AsyncPythonTask(
                name="generate_text",
                function=mock_llm_stream,
                returns=["full_text"]
            ),
            Map(
                name="process_languages",
                iterate_on="languages",  # Parameter: ["spanish", "french", "german"]
                iterate_as="language",  # Current language in loop
                branch=process_branch
            )
        ]
    )

    # Stream events from text generation and map processing
    async for event in pipeline.execute_streaming():
        print(f"Map streaming event: {event}")

    return pipeline


if __name__ == "__main__":
    import os

    os.environ.setdefault("RUNNABLE_PRM_prompt", "Hello, how are you?")
    os.environ.setdefault("RUNNABLE_PRM_text", "Good morning")
    os.environ.setdefault("RUNNABLE_PRM_languages", '["spanish", "french", "german"]')
    asyncio.run(main())
