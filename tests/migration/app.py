"""A FastAPI application written the way the reference's streaming example is written.

It is the migration suite's subject (``tests/test_compat_migration.py``): code that targets the
reference's ``runnable``, run unchanged on this project's ``runnable`` (compat/). So it does
what such code does, including what this project would not recommend:

- the prompt reaches the pipeline through ``os.environ["RUNNABLE_PRM_..."]``, set in the
  response body's generator just before ``execute_streaming()`` (compat reads it at the call,
  so concurrent requests keep their own prompts);
- run ids are built from ``names.get_random_name()`` and the time;
- the SSE body is formatted by hand, ``f"data: {json.dumps(event)}\\n\\n"``;
- generators end with a ``done`` event whose key is not the ``returns`` name (the reference maps
  it by position).

Five endpoints, one per kind: ``/chat``, ``/chat-and-summarize``, ``/translate/parallel``,
``/translate/map``, ``/translate/conditional``; each takes ``{"prompt": ...}`` (the
conditional one also ``"language"``) and answers with SSE, the run id in ``X-Run-Id``.

For the tests only: a prompt starting with ``gate:NAME `` makes the model wait, after its first
word, until ``POST /gates/NAME`` opens the gate (so a test can see events arrive while the run
is provably not finished, or disconnect mid-stream); ``GET /health``; and ``POST /direct/chat``
streams the same model with no pipeline at all (the baseline for timings).

Start it with ``uvicorn app:app --app-dir tests/migration``; runs are recorded under
``.run_log_store/`` in the working folder.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from runnable import (
    AsyncPipeline,
    AsyncPythonTask,
    Conditional,
    Map,
    Parallel,
    names,
)
from runnable.exceptions import ExecutionFailedError

app = FastAPI()

WORD_DELAY = 0.01  # seconds between two words of the mock model
GATES: dict[str, asyncio.Event] = {}
LANGUAGES = ["spanish", "french", "german"]


class Prompt(BaseModel):
    prompt: str
    language: str = "spanish"


def gate(name: str) -> asyncio.Event:
    return GATES.setdefault(name, asyncio.Event())


async def words_of(text: str, prompt: str) -> AsyncIterator[str]:
    """``text`` word by word at the model's pace (held at a gate if ``prompt`` names one)."""
    held = prompt.split()[0].removeprefix("gate:") if prompt.startswith("gate:") else None
    for number, word in enumerate(text.split()):
        if number == 1 and held is not None:
            await gate(held).wait()
        await asyncio.sleep(WORD_DELAY)
        yield word


# --- the task functions ---------------------------------------------------------------------


async def llm_stream(prompt: str) -> AsyncIterator[dict[str, Any]]:
    yield {"type": "status", "status": "thinking"}
    answer = f"Answer to: {prompt}"
    async for word in words_of(answer, prompt):
        yield {"type": "chunk", "text": word + " "}
    yield {"type": "done", "response": answer}


async def summarize(full_text: str) -> AsyncIterator[dict[str, Any]]:
    yield {"type": "status", "status": "summarizing"}
    summary = " ".join(full_text.split()[:4]) + " ..."
    yield {"type": "chunk", "text": summary}
    yield {"type": "done", "summary_text": summary}


def translator(language: str) -> Any:
    async def translate(prompt: str) -> AsyncIterator[dict[str, Any]]:
        yield {"type": "status", "status": f"translating to {language}"}
        translated = f"[{language}] {prompt}"
        async for word in words_of(translated, prompt):
            yield {"type": "chunk", "language": language, "text": word + " "}
        yield {"type": "done", f"{language}_translation": translated}

    translate.__name__ = translate.__qualname__ = f"translate_{language}"
    return translate


async def translate_one(prompt: str, language: str) -> AsyncIterator[dict[str, Any]]:
    async for event in translator(language)(prompt):
        yield event


# --- the pipelines --------------------------------------------------------------------------


def chat_pipeline() -> AsyncPipeline:
    return AsyncPipeline([AsyncPythonTask(name="llm", function=llm_stream, returns=["full_text"])])


def chat_and_summarize_pipeline() -> AsyncPipeline:
    return AsyncPipeline(
        [
            AsyncPythonTask(name="llm", function=llm_stream, returns=["full_text"]),
            AsyncPythonTask(name="summarize", function=summarize, returns=["summary"]),
        ]
    )


def branch(language: str) -> AsyncPipeline:
    task = AsyncPythonTask(
        name=f"{language}_task", function=translator(language), returns=[f"{language}_result"]
    )
    return task.as_async_pipeline()


def parallel_pipeline() -> AsyncPipeline:
    return AsyncPipeline(
        [Parallel(name="translate", branches={lang: branch(lang) for lang in LANGUAGES})]
    )


def map_pipeline() -> AsyncPipeline:
    each = AsyncPythonTask(
        name="translate_one", function=translate_one, returns=["translation_result"]
    )
    return AsyncPipeline(
        [
            Map(
                name="translate_all",
                iterate_on="languages",
                iterate_as="language",
                branch=each.as_async_pipeline(),
            )
        ]
    )


def conditional_pipeline() -> AsyncPipeline:
    return AsyncPipeline(
        [
            Conditional(
                name="route", parameter="language", branches={k: branch(k) for k in LANGUAGES}
            )
        ]
    )


# --- the endpoints, written as the reference's example writes them ---------------------------


def new_run_id() -> str:
    return f"{names.get_random_name()}-{datetime.now().strftime('%H%M%S-%f')}"


async def sse(pipeline: AsyncPipeline, run_id: str, **parameters: Any) -> AsyncIterator[str]:
    # Set the environment, then call at once: compat reads it at the call, so a request
    # arriving meanwhile cannot change this run's parameters.
    for key, value in parameters.items():
        os.environ[f"RUNNABLE_PRM_{key.upper()}"] = json.dumps(value)
    try:
        async for event in pipeline.execute_streaming(run_id=run_id):
            yield f"data: {json.dumps(event)}\n\n"
    except ExecutionFailedError as exc:
        yield f"data: {json.dumps({'type': 'error', 'error': str(exc)})}\n\n"


def respond(pipeline: AsyncPipeline, request: Prompt, **extra: Any) -> StreamingResponse:
    run_id = new_run_id()
    return StreamingResponse(
        sse(pipeline, run_id, prompt=request.prompt, **extra),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Run-Id": run_id},
    )


CHAT = chat_pipeline()
CHAT_AND_SUMMARIZE = chat_and_summarize_pipeline()
PARALLEL = parallel_pipeline()
MAP = map_pipeline()
CONDITIONAL = conditional_pipeline()


@app.post("/chat")
async def chat(request: Prompt) -> StreamingResponse:
    return respond(CHAT, request)


@app.post("/chat-and-summarize")
async def chat_and_summarize(request: Prompt) -> StreamingResponse:
    return respond(CHAT_AND_SUMMARIZE, request)


@app.post("/translate/parallel")
async def translate_parallel(request: Prompt) -> StreamingResponse:
    return respond(PARALLEL, request)


@app.post("/translate/map")
async def translate_map(request: Prompt) -> StreamingResponse:
    return respond(MAP, request, languages=LANGUAGES)


@app.post("/translate/conditional")
async def translate_conditional(request: Prompt) -> StreamingResponse:
    return respond(CONDITIONAL, request, language=request.language)


# --- for the tests ---------------------------------------------------------------------------


@app.post("/gates/{name}")
async def open_gate(name: str) -> dict[str, str]:
    gate(name).set()
    return {"opened": name}


@app.get("/health")
async def health() -> dict[str, Any]:
    return {"status": "ok", "tasks": len(asyncio.all_tasks())}


@app.post("/direct/chat")
async def direct_chat(request: Prompt) -> StreamingResponse:
    async def body() -> AsyncIterator[str]:
        async for event in llm_stream(request.prompt):
            yield f"data: {json.dumps(event)}\n\n"

    return StreamingResponse(body(), media_type="text/event-stream")
