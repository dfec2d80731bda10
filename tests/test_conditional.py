"""Conditional: the branch whose key is str(value) runs; no match is a recorded failure."""

from __future__ import annotations

import enum
import re
from typing import Any

import pytest
import trio
import trio.testing

from runnable_trio import (
    AsyncPipeline,
    BranchError,
    Conditional,
    ParameterError,
    PipelineDefinitionError,
    Status,
    StepTimeoutError,
)
from tests.helpers import collect, run, run_failing, task


def answer(text: str) -> Any:
    async def give() -> str:
        return text

    return give


def router(**branches: AsyncPipeline) -> AsyncPipeline:
    return AsyncPipeline([Conditional("route", "choice", branches)])


@pytest.mark.parametrize(
    ("choice", "expected"),
    [("heads", "H"), ("two_words", "TW"), (True, "T"), (3, "3")],
)
async def test_the_branch_keyed_by_str_of_the_value_runs(choice: Any, expected: str) -> None:
    pipeline = router(
        heads=task("t", answer("H"), "out"),
        two_words=task("t", answer("TW"), "out"),
        **{"True": task("t", answer("T"), "out"), "3": task("t", answer("3"), "out")},
    )
    log = await run(pipeline, parameters={"choice": choice})
    assert log.parameters_out["out"] == expected
    assert list(log.steps["route"].branches) == [str(choice)]
    assert log.steps["route"].assigned == {"out": expected}
    assert log.steps["route"].attempts[0].parameters_in == {"choice": choice}


async def test_the_branch_sees_the_parent_scope_and_its_path_names_the_key() -> None:
    async def shout(text: str) -> Any:
        yield {"type": "done", "loud": text.upper()}

    pipeline = router(shout_it=task("loud_task", shout, "loud"))
    events = await collect(
        pipeline,
        parameters={"choice": "shout_it", "text": "hey"},
        attribution=True,
    )
    done = next(e for e in events if e["type"] == "done")
    assert done["_meta"]["step"] == "route.shout_it.loud_task"
    assert done["loud"] == "HEY"


async def test_no_matching_branch_is_a_recorded_failure_listing_the_keys() -> None:
    pipeline = router(yes=task("t", answer("y")), no_way=task("t", answer("n")))
    cause, log = await run_failing(pipeline, parameters={"choice": "maybe"})
    message = (
        "step 'route': no branch for 'choice' = 'maybe' (looked for key 'maybe'; "
        "branches: 'yes', 'no_way')"
    )
    assert isinstance(cause, BranchError)
    assert str(cause) == message
    assert log.status is Status.FAIL
    assert log.steps["route"].status is Status.FAIL
    assert log.steps["route"].attempts[0].error_message == message
    assert log.steps["route"].branches == {}


async def test_a_missing_parameter_is_a_recorded_failure() -> None:
    cause, log = await run_failing(router(a=task("t", answer("a"))), parameters={"x": 1})
    assert isinstance(cause, ParameterError)
    assert str(cause) == (
        "step 'route': parameter 'choice' is not set, so no branch can be chosen "
        "(available parameters: x)"
    )
    assert log.steps["route"].status is Status.FAIL


async def test_a_failing_branch_fails_the_step_with_its_own_error() -> None:
    async def broken() -> None:
        raise RuntimeError("branch broke")

    cause, log = await run_failing(router(a=task("t", broken)), parameters={"choice": "a"})
    assert type(cause) is RuntimeError
    assert log.steps["route"].branches["a"].status is Status.FAIL


async def test_timeout_and_on_failure_on_a_conditional(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def hang() -> None:
        await trio.sleep_forever()

    pipeline = AsyncPipeline(
        [
            Conditional(
                "route",
                "choice",
                {"a": task("t", hang)},
                timeout=3,
                on_failure=task("fix", answer("fixed"), "state"),
            )
        ]
    )
    start = trio.current_time()
    log = await run(pipeline, parameters={"choice": "a"})
    assert trio.current_time() - start == pytest.approx(3)
    assert log.status is Status.SUCCESS
    assert log.steps["route"].attempts[0].error_type == StepTimeoutError.__name__
    assert log.steps["route"].branches["a"].status is Status.CANCELLED
    assert log.parameters_out["state"] == "fixed"


def test_definition_errors_name_the_step_and_field() -> None:
    branch = task("t", answer(""))
    cases: list[tuple[tuple[Any, ...], dict[str, Any], str]] = [
        (("", {"a": branch}), {}, "'parameter' must be a non-empty str (a parameter name)"),
        (("p", {}), {}, "'branches' must be a non-empty dict of branch names to AsyncPipeline"),
        (("p", {"a.b": branch}), {}, "free of '.' and '%'"),
        (("p", {"a": None}), {}, "but branch 'a' is not (got None)"),
        (("p", {"a": branch}), {"default": branch}, "unknown keyword 'default'"),
    ]
    for args, kwargs, message in cases:
        with pytest.raises(PipelineDefinitionError, match=re.escape(message)) as caught:
            Conditional("choose", *args, **kwargs)
        assert str(caught.value).startswith("Conditional 'choose'")


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.Enum):
    LOW = 1
    HIGH = 3


class Mood(enum.StrEnum):
    CALM = "calm"


class Size(enum.IntEnum):
    BIG = 10


class Shape(str, enum.Enum):  # noqa: UP042 (a str mixin: str() is "Shape.ROUND")
    ROUND = "round"


@pytest.mark.parametrize(
    ("choice", "key"),
    [
        (Color.RED, "red"),
        (Color.GREEN, "green"),
        (Level.HIGH, "3"),
        (Mood.CALM, "calm"),
        (Size.BIG, "10"),
        (Shape.ROUND, "round"),
    ],
    ids=repr,
)
async def test_an_enum_member_chooses_by_its_value(choice: enum.Enum, key: str) -> None:
    # str(Color.RED) is "Color.RED": a plain Enum used to match no key at all.
    pipeline = router(
        **{key: task("t", answer(key), "out"), "other": task("t", answer("?"), "out")}
    )
    log = await run(pipeline, parameters={"choice": choice})
    assert log.parameters_out["out"] == key
    assert list(log.steps["route"].branches) == [key]


async def test_an_enum_member_without_a_branch_names_the_key_looked_for() -> None:
    pipeline = router(RED=task("t", answer("by name")))
    cause, _ = await run_failing(pipeline, parameters={"choice": Color.RED})
    assert isinstance(cause, BranchError)
    assert str(cause) == (
        "step 'route': no branch for 'choice' = <Color.RED: 'red'> (looked for key 'red'; "
        "branches: 'RED')"
    )
