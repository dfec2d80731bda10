"""A chat endpoint streaming a mock LLM's answer as Server-Sent Events: FastAPI on uvicorn.

The asyncio side of the project: the app imports ``runnable`` (compat/), its task function is
plain asyncio (``asyncio.sleep``), and the Trio engine runs as a guest of uvicorn's loop.

- ``POST /chat`` with ``{"prompt": "..."}``: the answer as SSE (``id:`` = the event's sequence
  number). The prompt is this request's own parameter (``parameters=``), never an environment
  variable, so concurrent requests cannot see each other's prompts. The run id is in the
  ``X-Run-Id`` response header. A client that disconnects cancels its run. A failed run ends
  with an ``{"type": "error", ...}`` event; a prompt starting with ``!fail`` makes the mock
  model crash half-way, to show it.
- ``GET /runs/{run_id}/events`` with a ``Last-Event-ID`` header: the run's events after that
  one, from its event log (live while the run is still going), with the same ids.
- ``GET /debug/runs/{run_id}``: what the tests check after a disconnect: the run's status and
  whether the model's ``finally`` block has run.

Needs ``pip install ./compat fastapi uvicorn`` (or the development install of the README).
Run it with ``python examples/fastapi_chat.py [--port 8000]`` and try
``curl -N -X POST localhost:8000/chat -H 'Content-Type: application/json'
-d '{"prompt": "Hello"}'``. Runs are recorded under ``.run_log_store/`` in the working folder.
"""

from __future__ import annotations

import argparse
import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from fastapi import FastAPI, Header, HTTPException
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from runnable import AsyncPythonTask, replay

from runnable_trio import (
    SSE_HEADERS,
    SSE_MEDIA_TYPE,
    RunConfigurationError,
    RunLog,
    SSEStream,
    parse_last_event_id,
)

app = FastAPI()

# For the debug endpoint: the latest runs' live records, and the prompts whose model stream
# has finished (its finally block ran). Bounded, as anything kept per request must be.
KEEP = 1000
RECENT_RUNS: OrderedDict[str, RunLog] = OrderedDict()
CLEANED_UP: OrderedDict[str, None] = OrderedDict()


def remember(store: OrderedDict[str, Any], key: str, value: Any) -> None:
    store[key] = value
    while len(store) > KEEP:
        store.popitem(last=False)


class ChatRequest(BaseModel):
    prompt: str


async def mock_llm_stream(prompt: str) -> AsyncIterator[dict[str, Any]]:
    """Answer ``prompt`` word by word, like a streaming LLM client would."""
    try:
        yield {"type": "status", "status": "thinking"}
        await asyncio.sleep(0.05)
        response = f"Response to: {prompt}"
        for number, word in enumerate(response.split()):
            if number == 3 and prompt.startswith("!fail"):
                raise RuntimeError("the model crashed")
            yield {"type": "chunk", "text": word + " "}
            await asyncio.sleep(0.02)
        yield {"type": "done", "full_text": response}
    finally:
        remember(CLEANED_UP, prompt, None)


CHAT = AsyncPythonTask(
    name="llm_response", function=mock_llm_stream, returns=["full_text"]
).as_async_pipeline()


def sse_response(body: SSEStream, run_id: str) -> StreamingResponse:
    return StreamingResponse(
        body, media_type=SSE_MEDIA_TYPE, headers={**SSE_HEADERS, "X-Run-Id": run_id}
    )


@app.post("/chat")
async def chat(request: ChatRequest) -> StreamingResponse:
    run = CHAT.execute_streaming(parameters={"prompt": request.prompt}, event_log=True)
    remember(RECENT_RUNS, run.run_id, run.run_log)
    return sse_response(SSEStream(run), run.run_id)


@app.get("/runs/{run_id}/events")
async def resume(run_id: str, last_event_id: str | None = Header(None)) -> StreamingResponse:
    try:
        after = parse_last_event_id(last_event_id)
        events = replay(run_id, after=after)
    except RunConfigurationError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    return sse_response(SSEStream(events, after=after), run_id)


@app.get("/debug/runs/{run_id}")
async def debug_run(run_id: str) -> dict[str, Any]:
    run_log = RECENT_RUNS.get(run_id)
    if run_log is None:
        raise HTTPException(status_code=404, detail=f"no recent run {run_id!r}")
    return {
        "status": run_log.status,
        "finally_ran": run_log.parameters_in["prompt"] in CLEANED_UP,
        "processing": sum(log.status == "PROCESSING" for log in RECENT_RUNS.values()),
    }


async def main(host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve the app with uvicorn on this asyncio loop until SIGINT/SIGTERM."""
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    await server.serve()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    asyncio.run(main(args.host, args.port))
