"""Reference example "Streaming with AsyncGenerator", as written, through ``runnable``.

An async generator task streams status and chunk events; its ``done`` event sets
``full_text``. The ``prompt`` parameter is supplied the reference's way, as the environment
variable ``RUNNABLE_PRM_prompt``, set in the ``__main__`` block (an existing value wins).

Run it with ``python examples/reference/llm_stream.py``.
"""

# The reference's code is kept as written: no reformatting, no lint rewrites.
# fmt: off
# ruff: noqa: I001, UP035

from runnable import AsyncPythonTask
import asyncio
from typing import AsyncGenerator


async def mock_llm_stream(prompt: str) -> AsyncGenerator[dict, None]:
    """Stream LLM response token by token."""

    # Initial status
    yield {"type": "status", "status": "thinking"}
    await asyncio.sleep(0.3)

    # Simulate streaming response
    response = f"Response to: {prompt}"
    words = response.split()

    yield {"type": "status", "status": "generating"}

    # Stream word by word
    for word in words:
        yield {"type": "chunk", "text": word + " "}
        await asyncio.sleep(0.05)

    # Final event with complete response
    yield {"type": "done", "full_text": response}


async def main():
    task = AsyncPythonTask(
        name="llm_stream",
        function=mock_llm_stream,
        returns=["full_text"],
        stream_end_type="done"  # Which event contains final values
    )

    pipeline = task.as_async_pipeline()

    # Stream events in real-time
    async for event in pipeline.execute_streaming():
        print(f"Streaming event: {event}")

    return pipeline


if __name__ == "__main__":
    import os

    os.environ.setdefault("RUNNABLE_PRM_prompt", "Hello, how are you?")
    asyncio.run(main())
