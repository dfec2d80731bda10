"""Reference example "Parallel Async Execution", as written, through ``runnable``.

A mock LLM answers first; then two translation branches run concurrently, their events
interleaving in the one stream. (The reference runs the branches one after the other, with no
parameters, so its own version of this example fails; here each branch sees the parent's
parameters.)

The snippet uses names from the examples above it on the reference page (``asyncio``,
``AsyncGenerator``, ``mock_llm_stream``): they are supplied first, marked as such, with
``mock_llm_stream`` imported from ``llm_stream.py`` beside this file. The parameters
``prompt`` (for the LLM) and ``text`` (for the translators) are supplied as ``RUNNABLE_PRM_*``
environment variables, set in the ``__main__`` block (existing values win).

Run it with ``python examples/reference/parallel_translations.py``.
"""

# The reference's code is kept as written: no reformatting, no lint rewrites.
# fmt: off
# ruff: noqa: UP035

# Supplied: names the snippet takes from the examples above it on the reference page.
import asyncio
from typing import AsyncGenerator

from llm_stream import mock_llm_stream

# The snippet, as written:
from runnable import AsyncPipeline, AsyncPythonTask, Parallel


async def translate_spanish(text: str) -> AsyncGenerator[dict, None]:
    yield {"type": "status", "message": "Translating to Spanish"}
    await asyncio.sleep(0.5)
    yield {"type": "done", "spanish_translation": f"ES: {text}"}


async def translate_french(text: str) -> AsyncGenerator[dict, None]:
    yield {"type": "status", "message": "Translating to French"}
    await asyncio.sleep(0.4)
    yield {"type": "done", "french_translation": f"FR: {text}"}


async def main():
    pipeline = AsyncPipeline(
        steps=[
            # First generate text
            AsyncPythonTask(
                name="generate",
                function=mock_llm_stream,
                returns=["full_text"]
            ),
            # Then translate in parallel
            Parallel(
                name="translate_parallel",
                branches={
                    "spanish": AsyncPythonTask(
                        name="spanish",
                        function=translate_spanish,
                        returns=["spanish_translation"]
                    ).as_async_pipeline(),
                    "french": AsyncPythonTask(
                        name="french",
                        function=translate_french,
                        returns=["french_translation"]
                    ).as_async_pipeline()
                }
            )
        ]
    )

    # Stream events from LLM generation and parallel translations
    async for event in pipeline.execute_streaming():
        print(f"Parallel execution event: {event}")

    return pipeline


if __name__ == "__main__":
    import os

    os.environ.setdefault("RUNNABLE_PRM_prompt", "Hello, how are you?")
    os.environ.setdefault("RUNNABLE_PRM_text", "Good morning")
    asyncio.run(main())
