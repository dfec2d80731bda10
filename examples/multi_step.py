"""The reference's two-step process -> analyze pipeline, on Trio.

``process`` returns the upper-cased text as ``processed_text``; ``analyze`` receives it by
argument name. The initial ``text`` parameter is supplied per run.

Run it with ``python examples/multi_step.py``.
"""

from __future__ import annotations

from typing import Any

import trio

from runnable_trio import AsyncPipeline, AsyncPythonTask


async def process_input(text: str) -> str:
    await trio.sleep(0.5)
    return text.upper()


async def analyze_text(processed_text: str) -> dict[str, Any]:
    await trio.sleep(0.3)
    return {"word_count": len(processed_text.split()), "processed": processed_text}


async def main() -> None:
    pipeline = AsyncPipeline(
        name="text_processing",
        steps=[
            AsyncPythonTask(name="process", function=process_input, returns=["processed_text"]),
            AsyncPythonTask(name="analyze", function=analyze_text, returns=["analysis"]),
        ],
    )
    run = pipeline.execute_streaming(
        parameters={"text": "streams of events on trio"}, attribution=True
    )
    async for event in run:
        print(f"Pipeline event: {event['type']} {event['_meta']['step']}")
    print(f"analysis = {run.run_log.parameters_out['analysis']}")


if __name__ == "__main__":
    trio.run(main)
