"""Attacks on records4: branches reading their parent's values, the shared empty catalog, each
step described once per definition."""

from __future__ import annotations

import copy
import pickle
import shlex
import textwrap
import threading
from pathlib import Path
from typing import Any

import attrs
import cattrs
import pytest
import trio

from runnable_trio import (
    AsyncPipeline,
    AsyncPythonTask,
    Conditional,
    ExecutionFailedError,
    Loop,
    Map,
    Parallel,
    Retry,
)
from runnable_trio._definition import definition_of, describe_pipeline, hash_definition
from runnable_trio._filestore import FileRunLogStore
from runnable_trio._rerun import retry_stream
from runnable_trio._runlog import (
    NO_ENTRIES,
    CatalogEntry,
    RunLog,
    StepLog,
    _records,
    run_log_from_dict,
    run_log_to_dict,
)
from runnable_trio._store import MemoryRunLogStore
from runnable_trio.hosting import BaseStep

from .helpers import in_threads, run, task

# --- isolation --------------------------------------------------------------------------


async def test_a_parallel_branch_assigning_is_not_seen_by_a_sibling_running_after_it() -> None:
    assigned, read = trio.Event(), trio.Event()
    seen: dict[str, Any] = {}

    async def a_assigns() -> int:
        return 1

    async def a_waits() -> None:
        assigned.set()
        await read.wait()

    async def b_waits() -> None:
        await assigned.wait()

    async def b_reads(**rest: Any) -> None:  # bound once a1 has assigned x
        seen.update(rest)
        read.set()

    pipeline = AsyncPipeline(
        [
            Parallel(
                "p",
                {
                    "a": AsyncPipeline(
                        [
                            AsyncPythonTask("a1", a_assigns, returns=["x"]),
                            AsyncPythonTask("a2", a_waits),
                        ]
                    ),
                    "b": AsyncPipeline(
                        [AsyncPythonTask("b1", b_waits), AsyncPythonTask("b2", b_reads)]
                    ),
                },
            )
        ]
    )
    log = await run(pipeline, parameters={"x": 0})
    assert seen == {"x": 0}
    assert log.parameters_out["x"] == 1


async def test_map_items_do_not_see_each_others_names_nor_leak_into_the_parent() -> None:
    """Items run together: item 0 assigns ``y`` (and rebinds the item's own name) while item 1
    is still running and reads every name afterwards; the parent sees neither until the end."""
    assigned, read = trio.Event(), trio.Event()
    seen: list[dict[str, Any]] = []

    async def assign(item: int) -> tuple[int, int]:
        return item * 10, item + 100  # y, and the item's name shadowed by a return

    async def after(item: int, y: int, **rest: Any) -> int:
        if item == 100:  # item 0, its name rebound by its own return
            assigned.set()
            await read.wait()
        return item + y

    async def wait(item: int) -> None:
        if item == 1:
            await assigned.wait()

    async def read_all(item: int, **rest: Any) -> None:  # item 1: bound after item 0 assigned
        if item == 1:
            seen.append({"item": item, **rest})
            read.set()

    branch = AsyncPipeline(
        [
            AsyncPythonTask("wait", wait),
            AsyncPythonTask("read", read_all),
            AsyncPythonTask("assign", assign, returns=["y", "item"]),
            AsyncPythonTask("after", after, returns=["z"]),
        ]
    )

    pipeline = AsyncPipeline(
        [
            Map("m", iterate_on="items", iterate_as="item", branch=branch),
            AsyncPythonTask("top", lambda item, y: (item, y), returns=["top"]),
        ]
    )
    log = await run(pipeline, parameters={"items": [0, 1], "item": "parent", "y": -1})
    # item 1 saw the parent's y (not item 0's), and its own item.
    assert seen == [{"item": 1, "items": [0, 1], "y": -1}]
    # The item's binding never leaks into the parent: the parent's "item" is its own.
    assert log.parameters_out["z"] == [100, 111]
    assert log.parameters_out["item"] == [100, 101]
    assert log.parameters_out["y"] == [0, 10]


async def test_nested_fanouts_loops_and_conditionals_in_items_and_branches_stay_isolated() -> None:
    seen: list[tuple[str, Any]] = []

    async def inner(item: int, sub: int, base: int) -> int:
        return item * 100 + sub + base

    async def count(i: int, total: int) -> tuple[int, bool]:
        return total + i, i >= 2

    async def note(where: str, **rest: Any) -> None:
        seen.append((where, dict(sorted(rest.items()))))

    item_branch = AsyncPipeline(
        [
            # A Map in a Map item.
            Map("inner", iterate_on="subs", iterate_as="sub", branch=task("i", inner, "deep")),
            # A Parallel in a Map item, one branch holding a Loop, one a Conditional.
            Parallel(
                "par",
                {
                    "loop": AsyncPipeline(
                        [
                            Loop(
                                "l",
                                task("c", count, "total", "done"),
                                max_iterations=5,
                                break_on="done",
                                index_as="i",
                            )
                        ]
                    ),
                    "cond": AsyncPipeline(
                        [
                            Conditional(
                                "k",
                                parameter="flag",
                                branches={
                                    "True": task("t", lambda item: item + 1, "picked"),
                                    "False": task("f", lambda item: item - 1, "picked"),
                                },
                            )
                        ]
                    ),
                },
            ),
            AsyncPythonTask("n", lambda **rest: seen.append(("n", dict(sorted(rest.items()))))),
        ]
    )
    pipeline = AsyncPipeline(
        [
            Map("outer", iterate_on="items", iterate_as="item", branch=item_branch),
            AsyncPythonTask("end", note, returns=[]),
        ]
    )
    params = {"items": [1, 2], "subs": [1, 2], "base": 1000, "total": 0, "flag": True}
    log = await run(pipeline, parameters={**params, "where": "end"})
    assert log.parameters_out["deep"] == [[1101, 1102], [1201, 1202]]
    assert log.parameters_out["total"] == [3, 3]
    assert log.parameters_out["picked"] == [2, 3]
    by_item = sorted((rest for where, rest in seen if where == "n"), key=lambda r: r["item"])
    for number, rest in zip((1, 2), by_item, strict=True):
        assert rest["item"] == number
        assert rest["deep"] == [number * 100 + 1 + 1000, number * 100 + 2 + 1000]
        assert (rest["total"], rest["picked"], rest["done"]) == (3, number + 1, True)
        assert {"sub", "i"}.isdisjoint(rest)
    end = next(rest for where, rest in seen if where == "end")
    assert "sub" not in end
    assert end["base"] == 1000


async def test_on_failure_in_a_map_item_sees_the_item_and_keeps_its_names_to_itself() -> None:
    async def maybe_fail(item: int) -> int:
        if item == 1:
            raise ValueError("broke")
        return item

    seen: list[dict[str, Any]] = []

    async def recover(item: int, **rest: Any) -> str:
        seen.append({"item": item, **rest})
        return f"recovered {item}"

    failing = AsyncPythonTask(
        "f", maybe_fail, returns=["out"], on_failure=task("r", recover, "note")
    )
    pipeline = AsyncPipeline(
        [Map("m", iterate_on="items", iterate_as="item", branch=AsyncPipeline([failing]))]
    )
    log = await run(pipeline, parameters={"items": [0, 1], "note": "parent"})
    assert seen == [{"item": 1, "items": [0, 1], "note": "parent"}]
    assert log.parameters_out["note"] == [None, "recovered 1"]


async def test_a_retry_of_a_failed_map_restores_each_items_reused_names_in_that_item_only(
    tmp_path: Path,
) -> None:
    failing = {1}
    calls: list[int] = []

    async def first(item: int) -> int:
        calls.append(item)
        return item * 10

    async def second(item: int, first_out: int, **rest: Any) -> int:
        assert "first_out" not in rest
        if item in failing:
            raise ValueError("broke")
        return first_out + item

    branch = AsyncPipeline(
        [
            AsyncPythonTask("a", first, returns=["first_out"]),
            AsyncPythonTask("b", second, returns=["second_out"]),
        ]
    )
    pipeline = AsyncPipeline(
        [
            Map("m", iterate_on="items", iterate_as="item", branch=branch),
            AsyncPythonTask("c", lambda first_out, item: (first_out, item), returns=["check"]),
        ]
    )
    for store in (MemoryRunLogStore(), FileRunLogStore(tmp_path)):
        failing, calls = {1}, []
        params = {"items": [0, 1, 2], "item": "parent", "first_out": "parent"}
        with pytest.raises(ExecutionFailedError):
            await run(pipeline, run_id="r", parameters=params, store=store)
        failing = set()
        async with retry_stream(pipeline, "r", store=store) as events:
            async for _ in events:
                pass
        log = events.run_log
        assert log.parameters_out["second_out"] == [0, 11, 22]
        assert log.parameters_out["check"] == ([0, 10, 20], "parent")
        assert log.parameters_out["item"] == "parent"


@attrs.define
class _WritesValues(BaseStep):
    """A host's step writing ``scope.values`` itself (``Scope`` is on the hosting surface)."""

    written: trio.Event = attrs.field(factory=trio.Event, kw_only=True)

    async def _execute(self, ctx: Any, scope: Any, path: str, log: Any) -> None:
        try:
            scope.values["x"] = "from a"
        finally:
            self.written.set()


async def test_a_host_step_writing_a_branchs_values_does_not_reach_its_siblings() -> None:
    """A Parallel branch reads its parent's dict: writing to it must not write the parent's
    (before records4 it wrote the branch's own copy; now it is refused)."""
    seen: list[Any] = []
    writer = _WritesValues("w")

    async def wait() -> None:
        await writer.written.wait()

    pipeline = AsyncPipeline(
        [
            Parallel(
                "p",
                {
                    "a": writer.as_async_pipeline(),
                    "b": AsyncPipeline(
                        [
                            AsyncPythonTask("b1", wait),
                            AsyncPythonTask("b2", lambda x: seen.append(x)),
                        ]
                    ),
                },
                fail_fast=False,
            )
        ]
    )
    with pytest.raises(ExecutionFailedError, match="does not support item assignment"):
        await run(pipeline, parameters={"x": "parent"})
    assert seen == ["parent"]


# --- records ------------------------------------------------------------------------------


ENTRY = CatalogEntry("data.csv", "0" * 64, "put")


def test_records_with_the_shared_empty_catalog_copy_pickle_evolve_and_convert() -> None:
    empty, full = StepLog("a", "task", "a"), StepLog("b", "task", "b")
    full.add_catalog([ENTRY])
    for log in (empty, full):
        for again in (
            copy.copy(log),
            copy.deepcopy(log),
            pickle.loads(pickle.dumps(log)),
            attrs.evolve(log),
        ):
            assert again == log
            assert again.catalog == log.catalog
    # The copies of the one with entries have lists of their own.
    deep = copy.deepcopy(full)
    deep.add_catalog([ENTRY])
    assert full.catalog == [ENTRY]
    evolved = attrs.evolve(empty)
    evolved.add_catalog([ENTRY])
    assert empty.catalog == []
    assert StepLog("c", "task", "c").catalog == []
    # cattrs: a plain converter reads the shared catalog as an empty list; the records'
    # converter structures it back as a list of the step's own.
    assert cattrs.Converter().unstructure(empty)["catalog"] == []
    back = _records.structure(_records.unstructure(empty), StepLog)
    assert back == empty
    back.catalog.append(ENTRY)
    assert back.catalog == [ENTRY]
    assert empty.catalog == []
    record = RunLog("r", steps={"a": empty, "b": full})
    data = run_log_to_dict(record)
    assert type(data["steps"]["a"]["catalog"]) is list
    assert run_log_from_dict(data) == record


def test_reading_an_empty_catalog_as_a_list_does_not_raise() -> None:
    """Code that reads records (sorting or reversing each step's catalog for display) used
    to work on any step's catalog; an empty one must not be the exception."""
    log = StepLog("a", "task", "a")
    log.catalog.sort(key=lambda entry: entry.name)
    log.catalog.reverse()
    log.catalog.clear()
    assert log.catalog is NO_ENTRIES
    assert log.catalog == []
    with pytest.raises(IndexError):
        log.catalog.pop()
    with pytest.raises(ValueError, match="not in list"):
        log.catalog.remove(ENTRY)
    with pytest.raises(TypeError, match="add_catalog"):
        log.catalog.append(ENTRY)
    with pytest.raises(TypeError, match="add_catalog"):
        log.catalog.extend([ENTRY])
    with pytest.raises(TypeError, match="add_catalog"):
        log.catalog[:] = [ENTRY]
    assert NO_ENTRIES == []


async def test_catalog_entries_written_read_back_from_file_and_memory_stores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    from runnable_trio import Catalog

    def make() -> None:
        Path("out.txt").write_text("world")

    pipeline = AsyncPipeline(
        [
            AsyncPythonTask("put", make, catalog=Catalog(put=["out.txt"])),
            AsyncPythonTask("plain", lambda: None),
            AsyncPythonTask("get", lambda: None, catalog=Catalog(get=["out.txt"])),
        ]
    )
    for store in (MemoryRunLogStore(), FileRunLogStore(tmp_path / "logs")):
        log = await run(pipeline, run_id=f"c-{type(store).__name__}", store=store)
        read = store.load(log.run_id) if hasattr(store, "load") else None
        for record in (log, read):
            if record is None:
                continue
            steps = record.steps
            assert [e.name for e in steps["put"].catalog] == ["out.txt"]
            assert [e.name for e in steps["get"].catalog] == ["out.txt"]
            assert steps["plain"].catalog == []
            assert steps["put"].catalog is not steps["get"].catalog


# --- definitions --------------------------------------------------------------------------


async def _double(x: int) -> int:
    return x * 2


def test_one_step_object_in_two_places_and_two_pipelines_is_described_as_before() -> None:
    shared = AsyncPythonTask("t", _double, returns=["y"])
    one = AsyncPipeline(
        [Parallel("p", {"a": shared.as_async_pipeline(), "b": shared.as_async_pipeline()}), shared]
    )
    two = AsyncPipeline([Map("m", "xs", "x", shared.as_async_pipeline())])
    for pipeline in (one, two):
        definition, digest = definition_of(pipeline)
        assert definition == describe_pipeline(pipeline)
        assert digest == hash_definition(describe_pipeline(pipeline))
    # A step changed between two definitions: the second one describes it as it is now.
    mutable = AsyncPythonTask("u", _double, returns=["y"])
    first = AsyncPipeline([mutable])
    before = definition_of(first)[0]
    object.__setattr__(mutable, "name", "renamed")
    second = AsyncPipeline([mutable])
    assert definition_of(second)[0]["steps"][0]["name"] == "renamed"
    assert before["steps"][0]["name"] == "u"


def test_definitions_built_in_two_threads_at_once_are_each_complete() -> None:
    pipelines = [
        AsyncPipeline(
            [
                Parallel(
                    "p",
                    {
                        f"b{i}": AsyncPythonTask(f"t{n}", _double).as_async_pipeline()
                        for i in range(200)
                    },
                )
            ]
        )
        for n in range(2)
    ]
    results: list[Any] = [None, None]
    barrier = threading.Barrier(2)

    def build(index: int) -> None:
        barrier.wait()
        results[index] = definition_of(pipelines[index])

    in_threads(build, 2)
    for index, (definition, _) in enumerate(results):
        assert definition == describe_pipeline(pipelines[index])
        names = {b["steps"][0]["name"] for b in definition["steps"][0]["branches"].values()}
        assert names == {f"t{index}"}


async def _work() -> None:
    pass


@attrs.define
class _Wrapped(BaseStep):
    """A host's step described through a task made for the purpose (and freed at once)."""

    inner_name: str = ""

    def describe(self) -> dict[str, Any]:
        return {"kind": "wrapped", "inner": AsyncPythonTask(self.inner_name, _work).describe()}


def test_a_step_described_through_a_temporary_object_is_not_mistaken_for_another() -> None:
    # Each temporary task is freed once described: the next one may take its address.
    pipeline = AsyncPipeline([_Wrapped(f"s{i}", inner_name=f"inner{i}") for i in range(5)])
    definition, digest = definition_of(pipeline)
    assert [step["inner"]["name"] for step in definition["steps"]] == [
        f"inner{i}" for i in range(5)
    ]
    assert digest == hash_definition(describe_pipeline(pipeline))


def test_the_hash_of_a_pipeline_repeating_step_objects_is_the_one_before_records4() -> None:
    """Retries compare a record's definition hash with the pipeline's: describing each step
    object once must not change it (the digest below is the one ae5051f computes)."""
    t = AsyncPythonTask("t", textwrap.dedent, returns=["y"], retry=Retry(attempts=2))
    recovery = AsyncPythonTask("r", shlex.quote, returns=["z"]).as_async_pipeline()
    u = AsyncPythonTask("u", shlex.split, returns=["w"], on_failure=recovery)
    branch = AsyncPipeline([t, u])
    pipeline = AsyncPipeline(
        [
            Parallel("p", {"a": branch, "b": branch, "c": t.as_async_pipeline()}),
            Map("m", "xs", "x", branch),
            Loop("l", AsyncPipeline([t]), max_iterations=3, break_on="stop", index_as="i"),
            Conditional("k", parameter="y", branches={"1": branch, "2": recovery}),
            u,
        ],
        name="pinned",
    )
    assert definition_of(pipeline)[1] == (
        "86399a44f98d0fb7a26637a9a5cf4cf7a8a51bd73c5b61df39a9b918a585bc69"
    )
