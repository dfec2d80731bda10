"""Building pipelines: immutable models, and every mistake caught at build time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest

from runnable_trio import (
    AsyncPipeline,
    AsyncPythonTask,
    PipelineDefinitionError,
    Stub,
    json,
    metric,
    pickled,
)
from runnable_trio._returns import ReturnKind, TaskReturns
from tests.helpers import collect


async def fetch() -> int:
    return 1


async def stream() -> AsyncIterator[dict[str, Any]]:
    yield {"type": "done", "x": 1}


def task(name: str = "t", **kwargs: Any) -> AsyncPythonTask:
    return AsyncPythonTask(name=name, function=fetch, **kwargs)


def test_task_fields_and_defaults() -> None:
    t = AsyncPythonTask("t", fetch, returns=["a", pickled("b"), metric("c"), json("d")])
    assert t.name == "t"
    assert t.function is fetch
    assert t.returns == (
        TaskReturns("a"),
        TaskReturns("b", ReturnKind.PICKLED),
        TaskReturns("c", ReturnKind.METRIC),
        TaskReturns("d"),
    )
    assert t.stream_end_type == "done"
    assert t.on_failure is None
    assert not t.terminate_with_success
    assert not t.terminate_with_failure


def test_models_are_frozen() -> None:
    t = task()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        t.name = "other"  # type: ignore[misc]
    pipeline = t.as_async_pipeline()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        pipeline.steps = ()  # type: ignore[misc]


def test_returns_list_is_copied() -> None:
    names = ["a"]
    t = task(returns=names)
    names.append("b")
    assert [r.name for r in t.returns] == ["a"]


async def test_one_step_object_in_two_pipelines() -> None:
    shared = AsyncPythonTask("shared", stream, returns=["x"])
    first = AsyncPipeline([shared, Stub("after")])
    second = AsyncPipeline([Stub("before"), shared])
    before = attrs.asdict(shared)
    assert await collect(first) == [{"type": "done", "x": 1}]
    assert await collect(second) == [{"type": "done", "x": 1}]
    assert attrs.asdict(shared) == before
    assert first.steps[0] is second.steps[1] is shared


def test_as_async_pipeline() -> None:
    t = task("only")
    pipeline = t.as_async_pipeline()
    assert isinstance(pipeline, AsyncPipeline)
    assert pipeline.steps == (t,)
    assert pipeline.name == "only"


def test_stub_accepts_and_keeps_extra_keywords() -> None:
    stub = Stub("draft", function="later", returns=["x"])
    assert stub.extra == {"function": "later", "returns": ["x"]}


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: AsyncPipeline([]),
            "AsyncPipeline: 'steps' must be a non-empty list of steps (got ())",
        ),
        (lambda: AsyncPipeline("abc"), "'steps' must be a non-empty list of steps (got 'abc')"),
        (lambda: AsyncPipeline([fetch]), "'steps' must be a list of steps"),
        (
            lambda: AsyncPipeline([task("a"), task("a")], name="p"),
            "AsyncPipeline 'p': two steps are named 'a'",
        ),
        (lambda: task("a.b"), "AsyncPythonTask 'a.b': 'name' must be free of '.' and '%'"),
        (lambda: task("a%b"), "'name' must be free of '.' and '%'"),
        (lambda: task(""), "AsyncPythonTask: 'name' must be a non-empty str (got '')"),
        (lambda: task(3), "'name' must be a non-empty str (got 3)"),
        (
            lambda: AsyncPythonTask("t", 42),
            "AsyncPythonTask 't': 'function' must be a callable (got 42)",
        ),
        (
            lambda: task(returns=[42]),
            "AsyncPythonTask 't': 'returns' must be a list of str or TaskReturns "
            "(json(...), pickled(...), metric(...)) (got 42)",
        ),
        (lambda: task(returns="x"), "'returns' must be a list of str or TaskReturns"),
        (
            lambda: task(returns=["a-b"]),
            "AsyncPythonTask 't': 'returns' must be names that are Python identifiers (got 'a-b')",
        ),
        (lambda: task(returns=["x", "x"]), "'returns' must be a list of distinct names (got 'x')"),
        (
            lambda: task(terminate_with_success=True, terminate_with_failure=True),
            "AsyncPythonTask 't': 'terminate_with_success' and 'terminate_with_failure' cannot "
            "both be True",
        ),
        (lambda: task(terminate_with_success="yes"), "'terminate_with_success' must be a bool"),
        (lambda: task(stream_end_type=""), "'stream_end_type' must be a non-empty str (got '')"),
        (lambda: task(stream_end_type=None), "'stream_end_type' must be a non-empty str"),
        (
            lambda: task(on_failure=task("r")),
            "AsyncPythonTask 't': 'on_failure' must be an AsyncPipeline or None",
        ),
        (lambda: task(timeout=0), "'timeout' must be a positive number of seconds or None (got 0)"),
        (lambda: task(idle_timeout=-1), "'idle_timeout' must be a positive number of seconds"),
        (lambda: task(retry=3), "'retry' must be a Retry or None (got 3)"),
        (lambda: task(catalog=["x"]), "'catalog' must be a Catalog or None"),
        (lambda: AsyncPipeline([task()], name=5), "AsyncPipeline: 'name' must be a str (got 5)"),
    ],
)
def test_build_time_errors_name_step_field_expected_and_given(build: Any, message: str) -> None:
    with pytest.raises(PipelineDefinitionError) as caught:
        build()
    assert message in str(caught.value)


def test_unknown_keyword_names_the_step_and_the_keyword() -> None:
    with pytest.raises(
        PipelineDefinitionError, match=r"AsyncPythonTask 't': unknown keyword 'retruns'"
    ):
        AsyncPythonTask(name="t", function=fetch, retruns=["x"])
    with pytest.raises(PipelineDefinitionError, match=r"AsyncPipeline: unknown keyword 'stepz'"):
        AsyncPipeline(stepz=[task()])  # type: ignore[call-arg]


def test_definition_errors_are_value_errors() -> None:
    with pytest.raises(ValueError, match="non-empty list"):
        AsyncPipeline([])


def test_sync_generator_rejected_with_explanation() -> None:
    def produce() -> Any:
        yield {"type": "x"}

    with pytest.raises(PipelineDefinitionError, match="sync generator's events cannot be streamed"):
        AsyncPythonTask("t", produce)


def test_terminate_flags_allowed_on_any_step() -> None:
    pipeline = AsyncPipeline([task("a", terminate_with_success=True), task("b")])
    assert pipeline.steps[0].terminate_with_success


def test_return_names_must_be_identifiers() -> None:
    with pytest.raises(TypeError, match="identifier"):
        json("not a name")
