"""Several server processes sharing their runs through PostgreSQL: Starlette on Hypercorn's
Trio worker, runnable_trio's PostgreSQL store named by a configuration file.

Needs ``pip install 'runnable_trio[postgres]' starlette hypercorn`` and a PostgreSQL server.
Start two (or more) of them, on one host or several, with the same configuration::

    # workers.yaml
    run_log_store:
      type: postgres
      dsn_env: RUNNABLE_TRIO_DSN    # the DSN is read from this variable: no password here
    event_log: true

    export RUNNABLE_TRIO_DSN=postgresql://app@db.internal/runs
    python examples/pg_workers.py --config workers.yaml --port 8001 &
    python examples/pg_workers.py --config workers.yaml --port 8002 &

Then any worker serves any run, whichever worker ran it:

- ``POST /chat`` with ``{"prompt": "..."}``: the answer as SSE (``id:`` = the event's sequence
  number); the run id is in the ``X-Run-Id`` header, the worker's process id in ``X-Worker``.
  With ``PG_WORKERS_HANG=1`` in a worker's environment, a prompt starting with ``!hang``
  makes its mock model stop half-way and wait (to show a worker killed mid-run: its run shows
  dead everywhere, and a retry on another worker completes it).
- ``GET /runs/{run_id}/events`` with ``Last-Event-ID``: the events after that one, from the
  database, following the run live while it goes on in another process.
- ``GET /runs``: every run (newest first) with its status and whether its process is alive.
- ``POST /runs/{run_id}/retry``: retry a failed or crashed run here, as SSE.
"""

from __future__ import annotations

import argparse
import os
import signal
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
    SSEStream,
    list_runs,
    parse_last_event_id,
    replay,
    retry_streaming,
)

CONFIG = os.environ.get("PG_WORKERS_CONFIG", "workers.yaml")
#: Whether a ``!hang`` prompt hangs in this worker.
HANGS = os.environ.get("PG_WORKERS_HANG") == "1"


async def mock_llm_stream(prompt: str) -> AsyncIterator[dict[str, Any]]:
    """Answer ``prompt`` word by word, like a streaming LLM client would."""
    yield {"type": "status", "status": "thinking"}
    response = f"Response to: {prompt}"
    for number, word in enumerate(response.split()):
        if number == 2 and prompt.startswith("!hang") and HANGS:
            await trio.sleep_forever()
        yield {"type": "chunk", "text": word + " "}
        await trio.sleep(0.01)
    yield {"type": "done", "full_text": response}


CHAT = AsyncPythonTask(
    name="llm_response", function=mock_llm_stream, returns=["full_text"]
).as_async_pipeline()


def sse_response(body: SSEStream, run_id: str) -> StreamingResponse:
    headers = {**SSE_HEADERS, "X-Run-Id": run_id, "X-Worker": str(os.getpid())}
    return StreamingResponse(body, media_type=SSE_MEDIA_TYPE, headers=headers)


async def chat(request: Request) -> Response:
    body = await request.json()
    prompt = body.get("prompt") if isinstance(body, dict) else None
    if not isinstance(prompt, str):
        return JSONResponse({"detail": "expected {'prompt': str}"}, status_code=422)
    run = CHAT.execute_streaming(parameters={"prompt": prompt}, configuration_file=CONFIG)
    return sse_response(SSEStream(run), run.run_id)


async def resume(request: Request) -> Response:
    run_id = request.path_params["run_id"]
    try:
        after = parse_last_event_id(request.headers.get("last-event-id"))
        events = replay(run_id, after=after, configuration_file=CONFIG)
    except RunConfigurationError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=404)
    return sse_response(SSEStream(events, after=after), run_id)


async def runs(request: Request) -> Response:
    found = await trio.to_thread.run_sync(lambda: list_runs(configuration_file=CONFIG))
    return JSONResponse(
        [{"run_id": run.run_id, "status": run.status, "alive": run.alive} for run in found]
    )


async def retry(request: Request) -> Response:
    run_id = request.path_params["run_id"]
    try:
        run = retry_streaming(CHAT, run_id, configuration_file=CONFIG)
    except RunConfigurationError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=409)
    return sse_response(SSEStream(run), run_id)


app = Starlette(
    routes=[
        Route("/chat", chat, methods=["POST"]),
        Route("/runs", runs),
        Route("/runs/{run_id}/events", resume),
        Route("/runs/{run_id}/retry", retry, methods=["POST"]),
    ]
)


async def until_terminated() -> None:
    """Return on SIGINT or SIGTERM: Hypercorn then shuts down gracefully."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            return


async def main(host: str, port: int) -> None:
    config = Config()
    config.bind = [f"{host}:{port}"]
    config.loglevel = "WARNING"
    await serve(app, config, shutdown_trigger=until_terminated)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=CONFIG, help="the configuration file")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    CONFIG = args.config
    trio.run(main, args.host, args.port)
