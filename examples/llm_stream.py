"""Stream a mock LLM's answer token by token, then use the full text in a second step.

The main example: an async generator task streams events to the caller as they are produced;
its ``done`` event sets the ``full_text`` parameter (by key name), which the next step reads.

Run it with ``python examples/llm_stream.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import trio

from runnable_trio import AsyncPipeline, AsyncPythonTask


async def mock_llm_stream(prompt: str) -> AsyncIterator[dict[str, Any]]:
    """Answer ``prompt`` word by word, like a streaming LLM client would."""
    yield {"type": "status", "status": "thinking"}
    await trio.sleep(0.3)
    response = f"Response to: {prompt}"
    yield {"type": "status", "status": "generating"}
    for word in response.split():
        yield {"type": "chunk", "text": word + " "}
        await trio.sleep(0.05)
    yield {"type": "done", "full_text": response}


async def count_words(full_text: str) -> int:
    return len(full_text.split())


def build_pipeline() -> AsyncPipeline:
    return AsyncPipeline(
        [
            AsyncPythonTask(
                "llm_stream", mock_llm_stream, returns=["full_text"], stream_end_type="done"
            ),
            AsyncPythonTask("count", count_words, returns=["word_count"]),
        ],
        name="chat",
    )


async def main() -> None:
    pipeline = build_pipeline()
    async with pipeline.stream(parameters={"prompt": "Hello, how are you?"}) as events:
        async for event in events:
            if event["type"] == "chunk":
                print(event["text"], end="", flush=True)
            else:
                print(f"\n[{event['type']}] {event}")
    log = events.run_log
    print(f"run {log.run_id}: {log.status}, word_count={log.parameters_out['word_count']}")


if __name__ == "__main__":
    trio.run(main)
