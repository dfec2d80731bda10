"""A user's pipeline, the one examples/testing/test_answer_pipeline.py tests with the toolkit.

An LLM-like generator drafts an answer token by token; a Parallel translates the draft into
two languages; a Map summarises each paragraph, each item with retries and a timeout (the
"LLM" there is a flaky remote call); the draft is saved into the run's catalog.

The "LLM" is a stand-in that sleeps between tokens, so the tests run on virtual time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import trio

from runnable_trio import AsyncPipeline, AsyncPythonTask, Catalog, Map, Parallel, Retry

#: What the tests check was cleaned up: each generator call appends here in its finally.
CLOSED: list[str] = []


async def draft(question: str) -> AsyncIterator[dict[str, Any]]:
    """Stream an answer of two paragraphs, one token at a time."""
    try:
        words = f"About {question}: it depends.\nBut mostly yes.".split(" ")
        for word in words:
            await trio.sleep(0.2)  # the model thinking
            yield {"type": "token", "text": word}
        yield {"type": "done", "text": " ".join(words)}
    finally:
        CLOSED.append("draft")


def translator(language: str) -> Any:
    async def translate(text: str) -> AsyncIterator[dict[str, Any]]:
        try:
            await trio.sleep(1)
            yield {"type": "translation", "language": language}
            yield {"type": "done", f"{language}_text": f"[{language}] {text}"}
        finally:
            CLOSED.append(f"translate {language}")

    translate.__name__ = translate.__qualname__ = f"translate_{language}"
    return translate


def paragraphs_of(text: str) -> list[str]:
    return text.split("\n")


async def summarise(paragraph: str) -> str:
    await trio.sleep(0.5)  # the remote call
    return paragraph.split(" ")[0] + "..."


def save(text: str) -> None:
    Path("draft.md").write_text(text, encoding="utf-8")


def answer_pipeline() -> AsyncPipeline:
    return AsyncPipeline(
        [
            AsyncPythonTask("draft", draft, returns=["text"], idle_timeout=5),
            AsyncPythonTask("save", save, catalog=Catalog(put=["draft.md"])),
            Parallel(
                "translate",
                {
                    lang: AsyncPythonTask(
                        "llm", translator(lang), returns=[f"{lang}_text"]
                    ).as_async_pipeline()
                    for lang in ("spanish", "french")
                },
            ),
            AsyncPythonTask("split", paragraphs_of, returns=["paragraphs"]),
            Map(
                "summaries",
                "paragraphs",
                "paragraph",
                AsyncPythonTask(
                    "summarise",
                    summarise,
                    returns=["summary"],
                    retry=Retry(attempts=3, backoff=1.0),
                    timeout=10,
                ).as_async_pipeline(),
            ),
        ],
        name="answer",
    )
