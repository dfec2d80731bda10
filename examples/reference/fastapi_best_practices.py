"""Reference example "FastAPI Best Practices", as written, through ``runnable``.

A ``/stream-endpoint`` that validates events before sending them and turns a failure into an
error event. The snippet uses names it does not define (``app``, ``RequestModel`` with an
``input`` field, ``create_streaming_pipeline``, and the imports of ``datetime``, ``json``,
``os`` and ``StreamingResponse``): they are supplied first, marked as such, with a pipeline
that upper-cases its input word by word and fails on empty input.

As in ``fastapi_basic.py``, the per-request ``os.environ`` pattern is safe here because the
parameters are read when ``execute_streaming()`` is called.

Run it with ``uvicorn --app-dir examples/reference fastapi_best_practices:app`` and try
``curl -N -X POST localhost:8000/stream-endpoint -H 'Content-Type: application/json'
-d '{"input": "hello streaming world"}'``.
"""

# The reference's code is kept as written: no reformatting, no lint rewrites.
# fmt: off
# ruff: noqa: I001, UP035, SIM112

# Supplied: names the snippet uses without defining them.
import asyncio
import json
import os
from datetime import datetime
from typing import AsyncGenerator

from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from runnable import AsyncPythonTask

app = FastAPI()


class RequestModel(BaseModel):
    input: str


async def upper_case_words(input: str) -> AsyncGenerator[dict, None]:
    if not input:
        raise ValueError("Empty input")
    words = []
    for word in input.split():
        await asyncio.sleep(0.01)
        words.append(word.upper())
        yield {"type": "chunk", "text": words[-1]}
    yield {"type": "done", "result": " ".join(words)}


def create_streaming_pipeline():
    return AsyncPythonTask(
        name="upper_case", function=upper_case_words, returns=["result"]
    ).as_async_pipeline()


# The snippet, as written:
@app.post("/stream-endpoint")
async def stream_endpoint(request: RequestModel):
    async def event_stream():
        # Always use try/finally for cleanup
        os.environ["RUNNABLE_PRM_input"] = request.input

        try:
            pipeline = create_streaming_pipeline()

            async for event in pipeline.execute_streaming(
                run_id=f"req-{datetime.now().isoformat()}"
            ):
                # Validate events before sending
                if isinstance(event, dict) and "type" in event:
                    yield f"data: {json.dumps(event)}\n\n"

        except Exception as e:
            # Send error event to client
            error_event = {"type": "error", "error": str(e)}
            yield f"data: {json.dumps(error_event)}\n\n"

        finally:
            # Always clean up parameters
            os.environ.pop("RUNNABLE_PRM_input", None)

    return StreamingResponse(
        event_stream(),
        media_type="text/event-stream"
    )
