"""A definition describes a pipeline of many copies of one branch once, and hashes it without
encoding that branch once per copy; the hash stays the sha256 of the canonical JSON."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from runnable_trio import AsyncPipeline, AsyncPythonTask, Map, Parallel, _definition
from runnable_trio._definition import definition_of, describe_pipeline


async def work(x: int = 0) -> int:
    return x


def _canonical_hash(definition: Any) -> str:
    text = json.dumps(definition, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _pipelines() -> list[AsyncPipeline]:
    task = AsyncPythonTask("t", work, returns=["x"])
    other = AsyncPythonTask("u", work)
    inner = Parallel("inner", {f"i{k}": task.as_async_pipeline() for k in range(3)})
    return [
        AsyncPipeline([Parallel("fan", {f"b{i}": task.as_async_pipeline() for i in range(5)})]),
        AsyncPipeline(
            [
                Parallel("fan", {f"b{i}": AsyncPipeline([inner, other]) for i in range(4)}),
                task,
                Map("each", iterate_on="xs", iterate_as="x", branch=task.as_async_pipeline()),
            ]
        ),
        # The same steps under another name or description: a description of its own.
        AsyncPipeline(
            [
                Parallel(
                    "fan",
                    {
                        "a": task.as_async_pipeline(),
                        "b": AsyncPipeline([task], name="named"),
                        "c": AsyncPipeline([task], description="described"),
                        "d": other.as_async_pipeline(),
                    },
                )
            ]
        ),
        AsyncPipeline([task, other]),  # nothing shared but the step
    ]


@pytest.mark.parametrize("index", range(4))
def test_the_definition_and_its_hash_are_those_of_describing_each_copy_anew(index: int) -> None:
    pipeline = _pipelines()[index]
    definition, digest = definition_of(pipeline)
    fresh = describe_pipeline(pipeline)  # outside a definition: nothing shared
    assert definition == fresh
    assert digest == _canonical_hash(fresh)


def test_copies_of_one_branch_share_one_description() -> None:
    definition, _ = definition_of(_pipelines()[0])
    branches = definition["steps"][0]["branches"]
    assert all(branches[key] is branches["b0"] for key in branches)
    named = definition_of(_pipelines()[2])[0]["steps"][0]["branches"]
    assert [named[key]["name"] for key in "abc"] == ["t", "named", ""]
    assert named["c"]["description"] == "described"
    assert named["a"]["steps"][0] is named["b"]["steps"][0] is named["c"]["steps"][0]


def test_the_hash_encodes_a_shared_branch_once(monkeypatch: pytest.MonkeyPatch) -> None:
    encoded: list[int] = []
    canonical = _definition._canonical_json

    def counted(value: Any) -> str:
        text = canonical(value)
        encoded.append(len(text))
        return text

    monkeypatch.setattr(_definition, "_canonical_json", counted)
    task = AsyncPythonTask("t", work, returns=["x"])
    pipeline = AsyncPipeline(
        [Parallel("fan", {f"b{i}": task.as_async_pipeline() for i in range(200)})]
    )
    definition, digest = definition_of(pipeline)
    whole = json.dumps(definition, sort_keys=True, separators=(",", ":"))
    assert digest == hashlib.sha256(whole.encode()).hexdigest()
    # The branch once, then its 200 keys: a fraction of the text hashed.
    assert sum(encoded) < len(whole) / 10


def test_the_hash_quotes_keys_as_the_canonical_json_does() -> None:
    # Branch names are the keys the hash quotes itself (without json's encode call): quotes,
    # backslashes, controls and non-ASCII are escaped as json.dumps escapes them.
    task = AsyncPythonTask("t", work, returns=["x"])
    names = ['q"uote', "back\\slash", "tab\there", "caf\u00e9", "\U0001f600", "plain"]
    inner = AsyncPipeline([Parallel("inner", {name: task.as_async_pipeline() for name in names})])
    pipeline = AsyncPipeline(
        [Parallel("fan", dict.fromkeys(names, inner)), Parallel("again", {"x": inner})]
    )
    definition, digest = definition_of(pipeline)
    assert definition == describe_pipeline(pipeline)
    assert digest == _canonical_hash(definition)
