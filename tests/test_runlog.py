"""Run log records: serialisation round trips, placement by path, lossy values, definitions."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import hypothesis.strategies as st
from hypothesis import given, settings

from runnable_trio import AsyncPipeline, AsyncPythonTask, Catalog, Parallel, pickled
from runnable_trio._definition import describe_pipeline, hash_definition
from runnable_trio._jsoncodec import REPR_KEY, dumps, has_repr_marker, loads
from runnable_trio._runlog import (
    Attempt,
    BranchLog,
    CatalogEntry,
    CodeIdentity,
    RunLog,
    Status,
    StepLog,
    place_step,
    run_log_from_dict,
    run_log_to_dict,
)

# --- round trips --------------------------------------------------------------------------

names = st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=8)
times = st.datetimes(
    min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2100, 1, 1), timezones=st.just(dt.UTC)
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=4,
)
parameters = st.dictionaries(names, json_values, max_size=3)
statuses = st.sampled_from(Status)
optional_text = st.none() | st.text(max_size=20)

attempts = st.builds(
    Attempt,
    number=st.integers(1, 5),
    started_at=times,
    ended_at=st.none() | times,
    status=statuses,
    error_type=optional_text,
    error_message=optional_text,
    parameters_in=parameters,
    parameters_out=parameters,
    metrics=parameters,
)
entries = st.builds(
    CatalogEntry,
    name=names,
    sha256=st.text("0123456789abcdef", min_size=64, max_size=64),
    stage=st.sampled_from(["get", "put", "pickled"]),
    parameter=st.none() | names,
)


def _step(children: st.SearchStrategy[dict[str, BranchLog]]) -> st.SearchStrategy[StepLog]:
    return st.builds(
        StepLog,
        name=names,
        kind=st.sampled_from(["task", "parallel", "map", "stub"]),
        path=names,
        status=statuses,
        attempts=st.lists(attempts, max_size=2),
        branches=children,
        catalog=st.lists(entries, max_size=2),
        assigned=parameters,
    )


leaf_steps = _step(st.just({}))
branches = st.builds(
    BranchLog, name=names, status=statuses, steps=st.dictionaries(names, leaf_steps, max_size=2)
)
steps = _step(st.dictionaries(names, branches, max_size=2))
run_logs = st.builds(
    RunLog,
    run_id=names,
    tag=st.text(max_size=10),
    pipeline_name=st.text(max_size=10),
    status=statuses,
    started_at=times,
    ended_at=st.none() | times,
    parameters_in=parameters,
    parameters_out=parameters,
    steps=st.dictionaries(names, steps, max_size=3),
    step=optional_text,
    error_type=optional_text,
    error_message=optional_text,
    definition=st.dictionaries(names, json_values, max_size=2),
    definition_hash=st.text("0123456789abcdef", max_size=64),
    code=st.none() | st.builds(CodeIdentity, commit=optional_text, dirty=st.none() | st.booleans()),
    retried_at=st.lists(times, max_size=2),
)


@settings(max_examples=40, deadline=None)
@given(run_logs)
def test_run_log_round_trips_through_json(run_log: RunLog) -> None:
    text = dumps(run_log_to_dict(run_log))
    assert run_log_from_dict(loads(text)) == run_log


def test_serialised_shape_is_plain_json() -> None:
    run_log = RunLog("r1", started_at=dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC))
    data = json.loads(dumps(run_log_to_dict(run_log)))
    assert data["run_id"] == "r1"
    assert data["status"] == "PROCESSING"
    assert data["started_at"] == "2024-05-01T12:00:00+00:00"
    assert data["code"] is None


# --- values JSON cannot hold --------------------------------------------------------------


class Opaque:
    def __repr__(self) -> str:
        return "<opaque>"


def test_values_json_cannot_hold_become_repr_markers() -> None:
    cyclic: list[Any] = [1]
    cyclic.append(cyclic)
    run_log = RunLog(
        "r1",
        parameters_in={
            "obj": Opaque(),
            "tuple_keys": {(1, 2): "x", 3: "y"},
            "cycle": cyclic,
            "tuple": (1, 2),
        },
    )
    loaded = run_log_from_dict(loads(dumps(run_log_to_dict(run_log))))
    assert loaded.parameters_in["obj"] == {REPR_KEY: "<opaque>"}
    assert loaded.parameters_in["tuple_keys"] == {"(1, 2)": "x", "3": "y"}
    assert loaded.parameters_in["cycle"] == [1, {REPR_KEY: "<cycle: list>"}]
    assert loaded.parameters_in["tuple"] == [1, 2]
    assert has_repr_marker(loaded.parameters_in["obj"])
    assert not has_repr_marker(loaded.parameters_in["tuple"])


def test_a_broken_repr_does_not_break_the_record() -> None:
    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("no")

    marker = loads(dumps({"x": Broken()}))["x"][REPR_KEY]
    assert marker.endswith("Broken (repr failed: RuntimeError)>")


def test_keys_json_cannot_write_do_not_break_the_record() -> None:
    class BrokenKey:
        def __hash__(self) -> int:
            return 1

        def __repr__(self) -> str:
            raise RuntimeError("no")

    huge = 10**5000  # past sys.get_int_max_str_digits(): no text for it
    values = {huge: "a", huge + 1: "b", BrokenKey(): "c", BrokenKey(): "d", 7: "e", True: "f"}
    data = loads(dumps({"values": values}))
    broken = f"<{BrokenKey.__qualname__} (repr failed: RuntimeError)>"
    assert data["values"] == {  # distinct keys stay distinct, and are marked
        "$repr 0: <int too large to write>": "a",
        "$repr 1: <int too large to write>": "b",
        f"$repr 2: {broken}": "c",
        f"$repr 3: {broken}": "d",
        "7": "e",
        "true": "f",
    }
    assert has_repr_marker(data)
    assert not has_repr_marker(loads(dumps({"values": {7: "e", (1, 2): "x"}})))
    assert dumps(loads(dumps(values))) == dumps(values)


# --- placing a journal line ---------------------------------------------------------------


def test_place_step_builds_missing_parents_by_path() -> None:
    run_log = RunLog("r1")
    parent = StepLog("translate", "parallel", "translate")
    leaf = StepLog("t", "task", "translate.spanish.t", status=Status.SUCCESS)
    place_step(run_log, leaf, {"translate": parent})
    assert run_log.steps["translate"] is parent
    assert run_log.steps["translate"].branches["spanish"].steps["t"] is leaf
    # A sibling lands beside it; the parent already present is kept.
    other = StepLog("t", "task", "translate.french.t")
    place_step(run_log, other, {"translate": StepLog("translate", "parallel", "translate")})
    assert run_log.steps["translate"] is parent
    assert set(parent.branches) == {"spanish", "french"}


def test_place_step_without_parent_records_makes_placeholders() -> None:
    run_log = RunLog("r1")
    place_step(run_log, StepLog("t", "task", "m.0.t"), {})
    assert run_log.steps["m"].kind == ""
    assert run_log.steps["m"].path == "m"
    assert "t" in run_log.steps["m"].branches["0"].steps


# --- definitions --------------------------------------------------------------------------


async def upper(text: str) -> str:
    return text.upper()


def test_definition_describes_steps_and_hash_is_stable() -> None:
    pipeline = AsyncPipeline(
        [
            AsyncPythonTask("a", upper, returns=[pickled("x")], catalog=Catalog(put=["out/*.csv"])),
            Parallel("p", {"k": AsyncPythonTask("b", upper).as_async_pipeline()}),
        ],
        name="demo",
    )
    definition = describe_pipeline(pipeline)
    first = definition["steps"][0]
    assert first["kind"] == "task"
    assert first["function"] == f"{__name__}.upper"
    assert first["returns"] == [{"name": "x", "kind": "pickled"}]
    assert first["catalog"]["put"] == ["out/*.csv"]
    assert definition["steps"][1]["branches"]["k"]["steps"][0]["name"] == "b"
    json.dumps(definition)  # plain JSON
    assert hash_definition(definition) == hash_definition(describe_pipeline(pipeline))
    renamed = AsyncPipeline([AsyncPythonTask("a2", upper)], name="demo")
    assert hash_definition(describe_pipeline(renamed)) != hash_definition(definition)


def test_a_step_in_many_branches_is_described_once_with_the_same_definition() -> None:
    from runnable_trio._definition import definition_of

    task = AsyncPythonTask("t", upper, returns=["x"])
    pipeline = AsyncPipeline(
        [Parallel("p", {f"b{i}": task.as_async_pipeline() for i in range(3)}), task]
    )
    definition, digest = definition_of(pipeline)
    branches = definition["steps"][0]["branches"]
    assert branches["b0"]["steps"][0] is branches["b2"]["steps"][0]
    assert branches["b0"]["steps"][0] is definition["steps"][1]
    # The same data and hash as describing each occurrence anew.
    assert definition == describe_pipeline(pipeline)
    assert digest == hash_definition(describe_pipeline(pipeline))
    assert describe_pipeline(pipeline)["steps"][1] is not definition["steps"][1]


# --- the shared empty catalog -------------------------------------------------------------


def test_an_empty_catalog_reads_as_a_list_and_is_shared_not_written() -> None:
    import copy
    import pickle

    import pytest

    first, second = StepLog("a", "task", "a"), StepLog("b", "task", "b")
    assert first.catalog == []
    assert isinstance(first.catalog, list)
    assert first.catalog is second.catalog  # one list, not one per step
    with pytest.raises(TypeError, match="add_catalog"):
        first.catalog.append(CatalogEntry("x", "0" * 64, "put"))
    assert second.catalog == []
    assert copy.deepcopy(first) == first
    assert pickle.loads(pickle.dumps(first)) == first
    entry = CatalogEntry("x", "0" * 64, "put")
    first.add_catalog([entry])
    first.add_catalog([entry])
    assert first.catalog == [entry, entry]
    assert second.catalog == []
    second.catalog += [entry]  # += gives the step a list of its own
    assert second.catalog == [entry]
    assert StepLog("c", "task", "c").catalog == []
    assert (
        run_log_to_dict(RunLog("r", steps={"c": StepLog("c", "task", "c")}))["steps"]["c"][
            "catalog"
        ]
        == []
    )
