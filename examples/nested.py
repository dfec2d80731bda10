"""Composite steps inside each other: a Map of questions, each asking two models in Parallel.

For each question (a ``Map`` item), the two mock models answer at the same time (a
``Parallel`` inside the Map's branch); a ``Conditional`` then routes on the question's kind to
either keep the longer answer or have a ``Loop`` shorten it until it fits. Every question runs
concurrently with the others, and the answers come back in the questions' order. If anything
fails, every branch at every depth is cancelled, and leaving the stream early does the same.

Run it with ``python examples/nested.py``.
"""

from __future__ import annotations

from typing import Any

import trio

from runnable_trio import AsyncPipeline, AsyncPythonTask, Conditional, Loop, Map, Parallel


async def model_a(question: dict[str, Any]) -> str:
    await trio.sleep(0.3)
    return f"A says: {question['text']} is a fine question with a long answer"


async def model_b(question: dict[str, Any]) -> str:
    await trio.sleep(0.2)
    return f"B says: {question['text']}?"


async def route(question: dict[str, Any]) -> str:
    return question["kind"]


async def keep_longer(answer_a: str, answer_b: str) -> str:
    return max(answer_a, answer_b, key=len)


async def shorten(answer_a: str, round: int, answer: str = "") -> tuple[str, bool]:
    text = (answer_a if round == 0 else answer).rsplit(" ", 1)[0]
    await trio.sleep(0.05)
    return text, len(text) <= 40


def build() -> AsyncPipeline:
    ask_both = Parallel(
        "ask",
        {
            "a": AsyncPythonTask("model_a", model_a, returns=["answer_a"]).as_async_pipeline(),
            "b": AsyncPythonTask("model_b", model_b, returns=["answer_b"]).as_async_pipeline(),
        },
    )
    shorten_loop = Loop(
        "shorten",
        AsyncPythonTask("cut", shorten, returns=["answer", "short_enough"]).as_async_pipeline(),
        max_iterations=20,
        break_on="short_enough",
        index_as="round",
    )
    per_question = AsyncPipeline(
        [
            ask_both,
            AsyncPythonTask("route", route, returns=["kind"]),
            Conditional(
                "finish",
                "kind",
                {
                    "essay": AsyncPythonTask(
                        "keep", keep_longer, returns=["answer"]
                    ).as_async_pipeline(),
                    "tweet": AsyncPipeline([shorten_loop]),
                },
            ),
        ]
    )
    return AsyncPipeline([Map("questions", "questions", "question", per_question)])


async def main() -> None:
    questions = [
        {"text": "Why is the sky blue", "kind": "essay"},
        {"text": "What is structured concurrency", "kind": "tweet"},
        {"text": "Where do rivers go", "kind": "tweet"},
    ]
    run = build().execute_streaming(parameters={"questions": questions}, attribution=True)
    async for event in run:
        if event["type"] == "step.completed" and event["_meta"]["step"].count(".") >= 2:
            print(f"done: {event['_meta']['step']}")
    for question, answer in zip(questions, run.run_log.parameters_out["answer"], strict=True):
        print(f"{question['text']!r} -> {answer!r}")


if __name__ == "__main__":
    trio.run(main)
