"""A record's definition is the text ``dumps`` writes, a description shared by many branches
encoded once (``_deftext._described``)."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

import pytest

from runnable_trio import AsyncPipeline, AsyncPythonTask, Map, Parallel, _deftext
from runnable_trio._definition import definition_of
from runnable_trio._jsoncodec import dumps


async def work(x: int = 0) -> int:
    return x


class Colour(enum.Enum):
    RED = "red"


class Kind(enum.StrEnum):
    JSON = "json"


def _pipelines() -> list[AsyncPipeline]:
    task = AsyncPythonTask("t", work, returns=["x"])
    other = AsyncPythonTask("u\u00e9", work)
    inner = Parallel("inner", {f'i"{k}': task.as_async_pipeline() for k in range(3)})
    return [
        AsyncPipeline([Parallel("fan", {f"b{i}": task.as_async_pipeline() for i in range(5)})]),
        AsyncPipeline(
            [
                Parallel("fan", {f"b{i}": AsyncPipeline([inner, other]) for i in range(4)}),
                task,
                Map("each", iterate_on="xs", iterate_as="x", branch=task.as_async_pipeline()),
            ]
        ),
        AsyncPipeline(
            [
                Parallel(
                    "fan",
                    {
                        "a": task.as_async_pipeline(),
                        "b": AsyncPipeline([task], name="named"),
                        "c": AsyncPipeline([task], description="described"),
                    },
                )
            ]
        ),
        AsyncPipeline([task, other]),
    ]


def _text(definition: dict[str, Any]) -> str:
    _deftext._definitions.clear()  # encoded now, not found
    return _deftext.definition_text(definition)


@pytest.mark.parametrize("index", range(4))
def test_a_pipelines_definition_is_what_dumps_writes(index: int) -> None:
    definition, _ = definition_of(_pipelines()[index])
    assert _text(definition) == dumps(definition)


shared = {"kind": "task", "name": "t"}
_ODD: list[dict[str, Any]] = [
    # Values the encoder writes its own way, or refuses (dumps then rewrites the data).
    {"steps": [{"branches": {"a": {"steps": [shared]}, "b": {"steps": [shared]}}}]},
    {"steps": [{"branch": {"steps": [shared], "when": dt.date(2026, 1, 2)}}]},
    {"steps": [{"branches": {1: {"steps": []}}}]},  # a key that is not a str
    {"steps": [{"branches": {"a": {"steps": [{"kind": Kind.JSON, "n": 1.5, "k": (1, 2)}]}}}]},
    {"steps": [{"branches": {"a": {"steps": [], "colour": Colour.RED}}}], "x": float("nan")},
    {"steps": [{"branch": {"steps": [{(1, 2): "odd key"}]}, "big": 10**700}]},
    {"name": "caf\u00e9", "steps": {"not": "a list"}, "branch": None, "e": [], "d": {}},
]


@pytest.mark.parametrize("definition", _ODD)
def test_an_odd_definition_is_what_dumps_writes(definition: dict[str, Any]) -> None:
    assert _text(definition) == dumps(definition)


def test_a_cycle_is_left_to_dumps() -> None:
    looped: dict[str, Any] = {"steps": []}
    looped["steps"].append({"branch": looped})
    assert _text(looped) == dumps(looped)


def test_a_shared_branch_is_encoded_once(monkeypatch: pytest.MonkeyPatch) -> None:
    encoded: list[int] = []
    encode = _deftext.encoded

    def counted(value: Any) -> str:
        text = encode(value)
        encoded.append(len(text))
        return text

    monkeypatch.setattr(_deftext, "encoded", counted)
    task = AsyncPythonTask("t", work, returns=["x"])
    pipeline = AsyncPipeline(
        [Parallel("fan", {f"b{i}": task.as_async_pipeline() for i in range(200)})]
    )
    definition, _ = definition_of(pipeline)
    text = _text(definition)
    assert text == dumps(definition)
    # The branch's steps once, then its 200 keys: a fraction of the text encoded.
    assert len(encoded) == 1
    assert sum(encoded) < len(text) / 100
