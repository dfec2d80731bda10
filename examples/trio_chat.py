"""A chat endpoint streaming a mock LLM's answer as Server-Sent Events: Starlette on Hypercorn's
Trio worker, with runnable_trio used natively (no asyncio anywhere).

The same endpoints as ``fastapi_chat.py``:

- ``POST /chat`` with ``{"prompt": "..."}``: the answer as SSE (``id:`` = the event's sequence
  number). The prompt is this request's own parameter, never an environment variable. The run
  id is in the ``X-Run-Id`` response header. A client that disconnects cancels its run. A
  failed run ends with an ``{"type": "error", ...}`` event; a prompt starting with ``!fail``
  makes the mock model crash half-way, to show it.
- ``GET /runs/{run_id}/events`` with a ``Last-Event-ID`` header: the run's events after that
  one, from its event log (live while the run is still going), with the same ids.
- ``GET /debug/runs/{run_id}``: the run's status and whether the model's ``finally`` block has
  run (what the tests check after a disconnect).

Needs ``pip install starlette hypercorn`` (or the development install of the README).
Run it with ``python examples/trio_chat.py [--port 8000]`` and try
``curl -N -X POST localhost:8000/chat -H 'Content-Type: application/json'
-d '{"prompt": "Hello"}'``. Runs are recorded under ``.run_log_store/`` in the working folder.
"""

from __future__ import annotations

import argparse
import signal
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from runnable_trio import (
    SSE_HEADERS,
    SSE_MEDIA_TYPE,
    AsyncPythonTask,
    RunConfigurationError,
    RunLog,
    SSEStream,
    parse_last_event_id,
    replay,
)

# For the debug endpoint: the latest runs' live records, and the prompts whose model stream
# has finished (its finally block ran). Bounded, as anything kept per request must be.
KEEP = 1000
RECENT_RUNS: OrderedDict[str, RunLog] = OrderedDict()
CLEANED_UP: OrderedDict[str, None] = OrderedDict()


def remember(store: OrderedDict[str, Any], key: str, value: Any) -> None:
    store[key] = value
    while len(store) > KEEP:
        store.popitem(last=False)


async def mock_llm_stream(prompt: str) -> AsyncIterator[dict[str, Any]]:
    """Answer ``prompt`` word by word, like a streaming LLM client would."""
    try:
        yield {"type": "status", "status": "thinking"}
        await trio.sleep(0.05)
        response = f"Response to: {prompt}"
        for number, word in enumerate(response.split()):
            if number == 3 and prompt.startswith("!fail"):
                raise RuntimeError("the model crashed")
            yield {"type": "chunk", "text": word + " "}
            await trio.sleep(0.02)
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


async def chat(request: Request) -> Response:
    body = await request.json()
    prompt = body.get("prompt") if isinstance(body, dict) else None
    if not isinstance(prompt, str):
        return JSONResponse({"detail": "expected {'prompt': str}"}, status_code=422)
    run = CHAT.execute_streaming(parameters={"prompt": prompt}, event_log=True)
    remember(RECENT_RUNS, run.run_id, run.run_log)
    return sse_response(SSEStream(run), run.run_id)


async def resume(request: Request) -> Response:
    run_id = request.path_params["run_id"]
    try:
        after = parse_last_event_id(request.headers.get("last-event-id"))
        events = replay(run_id, after=after)
    except RunConfigurationError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=404)
    return sse_response(SSEStream(events, after=after), run_id)


async def debug_run(request: Request) -> Response:
    run_id = request.path_params["run_id"]
    run_log = RECENT_RUNS.get(run_id)
    if run_log is None:
        return JSONResponse({"detail": f"no recent run {run_id!r}"}, status_code=404)
    return JSONResponse(
        {
            "status": run_log.status,
            "finally_ran": run_log.parameters_in["prompt"] in CLEANED_UP,
            "processing": sum(log.status == "PROCESSING" for log in RECENT_RUNS.values()),
        }
    )


app = Starlette(
    routes=[
        Route("/chat", chat, methods=["POST"]),
        Route("/runs/{run_id}/events", resume),
        Route("/debug/runs/{run_id}", debug_run),
    ]
)


async def until_terminated() -> None:
    """Return on SIGINT or SIGTERM: Hypercorn then shuts down gracefully."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            return


async def main(host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve the app with Hypercorn's Trio worker until SIGINT/SIGTERM."""
    config = Config()
    config.bind = [f"{host}:{port}"]
    config.loglevel = "WARNING"
    await serve(app, config, shutdown_trigger=until_terminated)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    trio.run(main, args.host, args.port)
