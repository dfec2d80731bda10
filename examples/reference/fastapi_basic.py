"""Reference example "Basic FastAPI Setup", as written, through ``runnable``.

A ``/chat`` endpoint streaming a mock LLM's answer as Server-Sent Events. The snippet passes
each request's prompt through ``os.environ``; here that is safe even under concurrent
requests, because the parameters are read synchronously when ``execute_streaming()`` is called
(the reference reads them later, so its concurrent requests answer each other's prompts). A
client that disconnects cancels its pipeline. For an endpoint that takes the prompt as a
per-request parameter, see ``examples/fastapi_chat.py``.

The snippet uses names from the examples above it on the reference page (``AsyncPythonTask``,
``mock_llm_stream``): they are supplied first, marked as such.

Run it with ``uvicorn --app-dir examples/reference fastapi_basic:app`` and try
``curl -N -X POST localhost:8000/chat -H 'Content-Type: application/json'
-d '{"prompt": "Hello, how are you?"}'``.
"""

# The reference's code is kept as written: no reformatting, no lint rewrites.
# fmt: off
# ruff: noqa: I001, SIM112

# Supplied: names the snippet takes from the examples above it on the reference page.
from llm_stream import mock_llm_stream

from runnable import AsyncPythonTask

# The snippet, as written:
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
import json
import os

app = FastAPI()


class ChatRequest(BaseModel):
    prompt: str


@app.post("/chat")
async def chat_stream(request: ChatRequest):
    """Stream LLM response via Server-Sent Events."""

    async def event_stream():
        # Set pipeline parameter
        os.environ["RUNNABLE_PRM_prompt"] = request.prompt

        try:
            # Your async pipeline from previous examples
            pipeline = create_chat_pipeline()

            # Stream events directly to client
            async for event in pipeline.execute_streaming():
                yield f"data: {json.dumps(event)}\n\n"

        finally:
            os.environ.pop("RUNNABLE_PRM_prompt", None)

    return StreamingResponse(
        event_stream(),
        media_type="text/event-stream",
        headers={
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no"
        }
    )


def create_chat_pipeline():
    return AsyncPythonTask(
        name="llm_response",
        function=mock_llm_stream,
        returns=["full_text"]
    ).as_async_pipeline()
