"""Attacks on a record's definition text (``_deftext._described``: the dicts that may hold
descriptions walked, each met again written once, everything else the encoder's, whole): for
any definition, the text must be ``dumps``' byte for byte (one schema), or fail as ``dumps``
fails. Hostile definitions: random trees of the keys it walks (``steps``, ``branches``,
``branch``) with the values and keys ``dumps`` writes its own way, descriptions shared at
several depths, and real pipelines sharing one body between a Parallel and a Map."""

from __future__ import annotations

import collections
import datetime as dt
import enum
import random
import sys
from typing import Any

import pytest

from runnable_trio import AsyncPipeline, AsyncPythonTask, Map, Parallel, _deftext
from runnable_trio._definition import definition_of, hash_definition
from runnable_trio._jsoncodec import dumps


class Level(enum.IntEnum):
    HIGH = 2


class Kind(enum.StrEnum):
    TASK = "task"


class Name(str):
    pass


_VALUES: list[Any] = [
    "plain",
    'q"uote\\',
    "caf\u00e9 \u2603",
    "\udcff",
    Name("a str subclass"),
    Kind.TASK,
    0,
    -1,
    10**700,  # past the digit limit: dumps writes a marker
    True,
    None,
    1.5,
    -0.0,
    float("nan"),
    float("inf"),
    Level.HIGH,
    (1, "two"),
    dt.date(2026, 12, 7),
    {1, 2},  # no JSON: a marker
    b"bytes",
    collections.OrderedDict(a=1),
    [],
    {},
]
_KEYS: list[Any] = ["name", "kind", "x", "caf\u00e9", Name("sub"), 1, None, 2.5, True, (1, 2)]
_WALKED = ["steps", "branches", "branch"]


def _tree(chooser: random.Random, depth: int, pool: list[dict[str, Any]]) -> Any:
    if depth <= 0 or chooser.random() < 0.2:
        if pool and chooser.random() < 0.3:
            return chooser.choice(pool)  # a description met again, anywhere
        return chooser.choice(_VALUES)
    roll = chooser.random()
    if roll < 0.25:
        return [_tree(chooser, depth - 1, pool) for _ in range(chooser.randrange(4))]
    node: dict[Any, Any] = {}
    for _ in range(chooser.randrange(1, 5)):
        key = chooser.choice(_WALKED) if chooser.random() < 0.6 else chooser.choice(_KEYS)
        if key == "branches" and chooser.random() < 0.7:
            node[key] = {
                (chooser.choice(_KEYS) if chooser.random() < 0.1 else f"b{i}"): _tree(
                    chooser, depth - 1, pool
                )
                for i in range(chooser.randrange(4))
            }
        else:
            node[key] = _tree(chooser, depth - 1, pool)
    if chooser.random() < 0.3:
        pool.append(node)
    return node


def _text(definition: Any) -> str:
    _deftext._definitions.clear()  # encoded now, not found
    return _deftext.definition_text(definition)


@pytest.mark.parametrize("seed", range(40))
def test_a_random_definition_is_what_dumps_writes(seed: int) -> None:
    chooser = random.Random(seed)
    for _ in range(25):
        pool: list[dict[str, Any]] = []
        definition = {"steps": [_tree(chooser, 5, pool) for _ in range(chooser.randrange(4))]}
        if chooser.random() < 0.5:
            definition["name"] = chooser.choice(_VALUES)
        assert _text(definition) == dumps(definition)


def test_a_definition_too_deep_for_either_fails_as_dumps_does() -> None:
    definition: dict[str, Any] = {"steps": []}
    inner = definition
    for _ in range(sys.getrecursionlimit() * 2):
        nested: dict[str, Any] = {"steps": []}
        inner["steps"].append({"branch": nested})
        inner = nested
    try:
        expected: str | type[BaseException] = dumps(definition)
    except RecursionError as exc:
        expected = type(exc)
    if isinstance(expected, str):
        assert _text(definition) == expected
    else:
        with pytest.raises(expected):
            _text(definition)


def test_a_definition_deep_only_for_a_walk_is_what_dumps_writes() -> None:
    # Deep, but where nothing walked is deep: a task's own dict nested far below the limit of
    # a Python walk of holders (each holder one frame here) but within the C encoder's.
    leaf: Any = "end"
    for _ in range(200):
        leaf = {"x": leaf}
    definition: dict[str, Any] = {"steps": [{"branch": {"steps": [leaf]}}]}
    for _ in range(150):
        definition = {"steps": [{"branches": {"a": definition, "b": leaf}}]}
    assert _text(definition) == dumps(definition)


async def work(x: int = 0) -> int:
    return x


def test_one_body_shared_by_a_parallel_a_map_and_two_depths_is_what_dumps_writes() -> None:
    task = AsyncPythonTask("t", work, returns=["x"])
    body = AsyncPipeline([task], name="body")
    inner = Parallel(
        "inner",
        {
            "same": body,
            "other": AsyncPipeline([task, Map("m", iterate_on="xs", iterate_as="x", branch=body)]),
        },
    )
    pipeline = AsyncPipeline(
        [
            Parallel("fan", {"body": body, "deeper": AsyncPipeline([inner])}),
            Map("each", iterate_on="xs", iterate_as="x", branch=body),
            task,
        ]
    )
    definition, digest = definition_of(pipeline)
    assert _text(definition) == dumps(definition)
    assert definition == pipeline.describe()
    assert digest == hash_definition(pipeline.describe())
