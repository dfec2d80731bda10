"""The library's errors: what they say when a pipeline is built wrong, and that they pickle.

Build-time checks: every class that builds a pipeline names itself, the field, what was
expected and what was given, for wrong values, missing arguments and typos alike.
"""

from __future__ import annotations

import math
import pickle
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import runnable_trio
from runnable_trio import (
    AsyncPipeline,
    AsyncPythonTask,
    BranchError,
    Catalog,
    Conditional,
    EventError,
    ExecutionFailedError,
    Loop,
    Map,
    Parallel,
    ParameterError,
    PipelineArgumentError,
    PipelineDefinitionError,
    Retry,
    ReturnsError,
    RunConfigurationError,
    RunnableError,
    StepError,
    StepTimeoutError,
    Stub,
    TaskReturns,
    TerminatedWithFailure,
    json,
    metric,
    pickled,
)


async def fetch() -> int:
    return 1


def branch() -> AsyncPipeline:
    return AsyncPythonTask("inner", fetch).as_async_pipeline()


# Pickling: every exported error, with its fields.

SAMPLES: dict[type[BaseException], BaseException] = {
    RunnableError: RunnableError("something"),
    PipelineDefinitionError: PipelineDefinitionError(
        owner="AsyncPythonTask 't'", field="timeout", expected="a number", given="'x'"
    ),
    PipelineArgumentError: PipelineArgumentError("Retry: unknown keyword 'attempt'"),
    RunConfigurationError: RunConfigurationError("bad configuration"),
    StepError: StepError("a.b", "went wrong"),
    ParameterError: ParameterError("a", "no parameter"),
    ReturnsError: ReturnsError("a", "no returns"),
    EventError: EventError("a", "not an event"),
    StepTimeoutError: StepTimeoutError("a.b", "idle_timeout", 2.5),
    BranchError: BranchError("route", "no branch"),
    TerminatedWithFailure: TerminatedWithFailure("stop"),
    ExecutionFailedError: ExecutionFailedError("run-1", "a.b", "ValueError: boom"),
}


def exported_errors() -> list[type[BaseException]]:
    return [
        value
        for value in (getattr(runnable_trio, name) for name in runnable_trio.__all__)
        if isinstance(value, type) and issubclass(value, BaseException)
    ]


def test_every_exported_error_has_a_pickling_sample() -> None:
    assert set(exported_errors()) == set(SAMPLES)


@pytest.mark.parametrize("error", list(SAMPLES.values()), ids=lambda e: type(e).__name__)
def test_every_error_round_trips_through_pickle_with_its_fields(error: BaseException) -> None:
    error.add_note("a note added on the way")
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        copy = pickle.loads(pickle.dumps(error, protocol=protocol))
        assert type(copy) is type(error)
        assert str(copy) == str(error)
        assert copy.args == error.args
        assert vars(copy) == vars(error)


def test_unpickled_errors_keep_their_fields_by_name() -> None:
    timeout = pickle.loads(pickle.dumps(StepTimeoutError("a.b", "timeout", 3)))
    assert (timeout.step, timeout.kind, timeout.seconds) == ("a.b", "timeout", 3)
    failed = pickle.loads(pickle.dumps(ExecutionFailedError("r", None, "boom")))
    assert (failed.run_id, failed.step, str(failed)) == ("r", None, "run 'r' failed: boom")
    assert (failed.error_type, failed.error_message) == (None, None)
    recorded = pickle.loads(pickle.dumps(ExecutionFailedError.of("r", "a.b", "KeyError", "'x'")))
    assert (recorded.step, recorded.error_type, recorded.error_message, str(recorded)) == (
        "a.b",
        "KeyError",
        "'x'",
        "run 'r' failed at step 'a.b': KeyError: 'x'",
    )
    definition = pickle.loads(pickle.dumps(SAMPLES[PipelineDefinitionError]))
    assert (definition.owner, definition.field, definition.expected, definition.given) == (
        "AsyncPythonTask 't'",
        "timeout",
        "a number",
        "'x'",
    )


def test_the_cause_goes_with_the_error_when_it_pickles() -> None:
    failed = ExecutionFailedError("r", "a", "ValueError: boom")
    failed.__cause__ = StepTimeoutError("a", "timeout", 1.0)
    failed.__cause__.__cause__ = ValueError("boom")
    copy = pickle.loads(pickle.dumps(failed))
    assert isinstance(copy.__cause__, StepTimeoutError)
    assert copy.__cause__.step == "a"
    assert isinstance(copy.__cause__.__cause__, ValueError)
    assert copy.__suppress_context__


def test_a_cause_that_does_not_pickle_is_left_behind() -> None:
    class Local(Exception):
        pass

    failed = ExecutionFailedError("r", "a", "Local: x")
    failed.__cause__ = Local("x")
    copy = pickle.loads(pickle.dumps(failed))
    assert (str(copy), copy.__cause__) == (str(failed), None)


def test_an_error_raised_by_a_build_pickles_too() -> None:
    with pytest.raises(PipelineDefinitionError) as caught:
        AsyncPythonTask("t", fetch, timeout=math.nan)
    copy = pickle.loads(pickle.dumps(caught.value))
    assert (copy.owner, copy.field, copy.given) == ("AsyncPythonTask 't'", "timeout", "nan")


# Second bases: the exception users would catch without knowing this library.


def test_definition_errors_are_value_errors_and_argument_errors_also_type_errors() -> None:
    assert issubclass(PipelineDefinitionError, ValueError)
    assert issubclass(PipelineArgumentError, PipelineDefinitionError)
    assert issubclass(PipelineArgumentError, TypeError)
    assert issubclass(RunConfigurationError, ValueError)


# Missing arguments, too many, and typos: one PipelineArgumentError naming class and argument.


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: AsyncPythonTask("t"), "AsyncPythonTask 't': missing required argument 'function'"),
        (
            lambda: AsyncPythonTask(),
            "AsyncPythonTask: missing required arguments 'name', 'function'",
        ),
        (lambda: Parallel("p"), "Parallel 'p': missing required argument 'branches'"),
        (
            lambda: Map("m", "items"),
            "Map 'm': missing required arguments 'iterate_as', 'branch' "
            "(usage: Map(name, iterate_on, iterate_as, branch, ...))",
        ),
        (
            lambda: Loop("l", branch()),
            "Loop 'l': missing required arguments 'max_iterations', 'break_on', 'index_as'",
        ),
        (
            lambda: Conditional(name="c", parameter="x"),
            "Conditional 'c': missing required argument 'branches'",
        ),
        (lambda: Stub(), "Stub: missing required argument 'name'"),
        (lambda: AsyncPipeline(), "AsyncPipeline: missing required argument 'steps'"),
        (
            lambda: Retry(attempt=3),
            "Retry: unknown keyword 'attempt'; accepted keywords are attempts, backoff, factor, "
            "max_backoff",
        ),
        (
            lambda: Catalog(gets=["a.csv"]),
            "Catalog: unknown keyword 'gets'; accepted keywords are get, put, store_copy",
        ),
        (
            lambda: Retry(3),
            "Retry: takes keyword arguments only (attempts, backoff, factor, max_backoff), "
            "got 1 positional",
        ),
        (
            lambda: AsyncPythonTask("t", fetch, ["x"]),
            "AsyncPythonTask 't': takes at most 2 positional arguments (name, function;",
        ),
        (
            lambda: AsyncPythonTask("t", fetch, function=fetch),
            "AsyncPythonTask 't': 'function' given both by position and by keyword",
        ),
        (lambda: json(3), "json(): 'name' must be a str that is a Python identifier (got 3)"),
        (lambda: pickled("a b"), "pickled(): 'name' must be a str that is a Python identifier"),
        (lambda: metric(None), "metric(): 'name' must be a str that is a Python identifier"),
        (lambda: TaskReturns("x", "bogus"), "TaskReturns: 'kind' must be a ReturnKind"),
    ],
)
def test_wrong_arguments_name_the_class_and_the_argument(build: Any, message: str) -> None:
    with pytest.raises(PipelineArgumentError) as caught:
        build()
    assert message in str(caught.value)
    assert isinstance(caught.value, TypeError)


def test_stub_still_takes_any_keyword() -> None:
    assert Stub("s", function=fetch, returns=["x"]).extra == {"function": fetch, "returns": ["x"]}


def test_task_returns_kind_given_as_text() -> None:
    assert TaskReturns("x", "pickled") == pickled("x")


# Numbers: every duration and count is a finite number in range, checked when built.

NOT_FINITE = [math.nan, math.inf, -math.inf, 10**400, -(10**400)]


def bad_seconds() -> st.SearchStrategy[object]:
    return st.one_of(
        st.sampled_from([*NOT_FINITE, 0, 0.0, -0.0, True, False, "1", [1]]),
        st.floats(max_value=0.0) | st.integers(max_value=0),
        st.integers(min_value=2**1024),
    )


def bad_non_negative() -> st.SearchStrategy[object]:
    return st.one_of(
        st.sampled_from([*NOT_FINITE, True, "1", None]),
        st.floats(max_value=0.0, exclude_max=True) | st.integers(max_value=-1),
        st.integers(min_value=2**1024),
    )


@pytest.mark.parametrize("field", ["timeout", "idle_timeout"])
@settings(max_examples=50, deadline=None)  # no wall-clock limit: never load-dependent
@given(value=bad_seconds())
def test_durations_that_are_not_finite_positive_numbers_fail_the_build(
    field: str, value: object
) -> None:
    with pytest.raises(PipelineDefinitionError) as caught:
        AsyncPythonTask("t", fetch, **{field: value})
    assert f"AsyncPythonTask 't': {field!r} must be" in str(caught.value)
    assert caught.value.field == field


@pytest.mark.parametrize(
    "build",
    [
        lambda v: Parallel("s", {"a": branch()}, timeout=v),
        lambda v: Map("s", "items", "item", branch(), timeout=v),
        lambda v: Loop("s", branch(), 3, "done", "i", timeout=v),
        lambda v: Conditional("s", "x", {"a": branch()}, timeout=v),
        lambda v: Stub("s", timeout=v),
    ],
    ids=["Parallel", "Map", "Loop", "Conditional", "Stub"],
)
@pytest.mark.parametrize("value", NOT_FINITE, ids=repr)
def test_composites_refuse_timeouts_that_are_not_finite(build: Any, value: object) -> None:
    with pytest.raises(PipelineDefinitionError, match="'s': 'timeout' must be a"):
        build(value)


def test_the_largest_finite_timeout_is_accepted() -> None:
    assert AsyncPythonTask("t", fetch, timeout=10**300).timeout == 10**300


@pytest.mark.parametrize("field", ["backoff", "factor", "max_backoff"])
@settings(max_examples=50, deadline=None)  # no wall-clock limit: never load-dependent
@given(value=bad_non_negative())
def test_retry_numbers_that_are_not_finite_fail_the_build(field: str, value: object) -> None:
    if value is None and field == "max_backoff":
        return  # None is "no bound"
    with pytest.raises(PipelineDefinitionError) as caught:
        Retry(**{field: value})
    assert f"Retry: {field!r} must be a finite number >= 0" in str(caught.value)


@settings(max_examples=50, deadline=None)  # no wall-clock limit: never load-dependent
@given(value=st.one_of(st.integers(max_value=0), st.sampled_from([1.0, 2.5, True, "3", None])))
def test_retry_attempts_must_be_an_int_of_at_least_one(value: object) -> None:
    with pytest.raises(PipelineDefinitionError, match=r"Retry: 'attempts' must be an int >= 1"):
        Retry(attempts=value)  # type: ignore[arg-type]


# Functions whose arguments cannot be bound by name.


@pytest.mark.parametrize(
    ("function", "message"),
    [
        (len, "'obj' is positional-only"),
        (lambda x, /: x, "'x' is positional-only"),
        (divmod, "'x', 'y' are positional-only"),
        (max, "signature can be read"),
        (dict, "signature can be read"),
    ],
    ids=["len", "lambda", "divmod", "max", "dict"],
)
def test_functions_whose_arguments_cannot_be_bound_by_name_fail_the_build(
    function: Any, message: str
) -> None:
    with pytest.raises(PipelineDefinitionError) as caught:
        AsyncPythonTask("t", function)
    assert "AsyncPythonTask 't': 'function' must be a callable" in str(caught.value)
    assert message in str(caught.value)


def bad_counts() -> st.SearchStrategy[object]:
    return st.one_of(
        st.integers(max_value=0),
        st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from([True, False, "3", [3]]),
    )


@settings(max_examples=50, deadline=None)  # no wall-clock limit: never load-dependent
@given(value=bad_counts())
def test_counts_of_the_composites_must_be_ints_of_at_least_one(value: object) -> None:
    with pytest.raises(PipelineDefinitionError) as caught:
        Map("m", "items", "item", branch(), max_concurrency=value)  # type: ignore[arg-type]
    assert str(caught.value).startswith("Map 'm': 'max_concurrency' must be an int >= 1 or None")
    with pytest.raises(PipelineDefinitionError) as caught:
        Loop("l", branch(), value, "done", "i")  # type: ignore[arg-type]
    assert str(caught.value).startswith("Loop 'l': 'max_iterations' must be an int >= 1 (got")
