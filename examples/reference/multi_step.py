"""Reference example "Multi-Step Async Pipeline", as written, through ``runnable``.

Two ``async def`` steps: the first's return value (``processed_text``) is the second's
argument. The first step's ``text`` parameter is supplied as ``RUNNABLE_PRM_text``, set in the
``__main__`` block (an existing value wins).

It prints nothing, as written: coroutine tasks stream no events of their own (their results
are in the run log; ``execute_streaming(attribution=True)`` would add lifecycle events).

Run it with ``python examples/reference/multi_step.py``.
"""

# The reference's code is kept as written: no reformatting, no lint rewrites.
# fmt: off
# ruff: noqa: I001

from runnable import AsyncPipeline, AsyncPythonTask
import asyncio


async def process_input(text: str):
    await asyncio.sleep(0.5)
    return text.upper()


async def analyze_text(processed_text: str):
    await asyncio.sleep(0.3)
    word_count = len(processed_text.split())
    return {"word_count": word_count, "processed": processed_text}


async def main():
    pipeline = AsyncPipeline(
        name="text_processing",
        steps=[
            AsyncPythonTask(
                name="process",
                function=process_input,
                returns=["processed_text"]
            ),
            AsyncPythonTask(
                name="analyze",
                function=analyze_text,
                returns=["analysis"]
            )
        ]
    )

    # Stream events from the multi-step pipeline
    async for event in pipeline.execute_streaming():
        print(f"Pipeline event: {event}")

    return pipeline


if __name__ == "__main__":
    import os

    os.environ.setdefault("RUNNABLE_PRM_text", "runnable pipelines stream events")
    asyncio.run(main())
