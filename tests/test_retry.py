"""Retry: the defaults retry as documented, and no policy's arithmetic can hide the task's error."""

from __future__ import annotations

import itertools
import math
import sys

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from runnable_trio import AsyncPythonTask, Retry, Status
from tests.helpers import run, run_failing


def test_the_defaults_are_the_documented_ones() -> None:
    assert Retry() == Retry(attempts=3, backoff=1.0, factor=2.0, max_backoff=None)


async def test_retry_with_no_arguments_retries(autojump_clock: trio.testing.MockClock) -> None:
    started: list[float] = []

    async def flaky() -> str:
        started.append(trio.current_time())
        if len(started) < 3:
            raise ConnectionError("try again")
        return "ok"

    run_log = await run(
        AsyncPythonTask("flaky", flaky, returns=["x"], retry=Retry()).as_async_pipeline()
    )
    assert run_log.status is Status.SUCCESS
    assert [b - a for a, b in itertools.pairwise(started)] == [1.0, 2.0]
    assert [a.status for a in run_log.steps["flaky"].attempts] == [
        Status.FAIL,
        Status.FAIL,
        Status.SUCCESS,
    ]


async def test_no_retry_given_means_one_attempt(autojump_clock: trio.testing.MockClock) -> None:
    calls = 0

    async def fails() -> None:
        nonlocal calls
        calls += 1
        raise ConnectionError("once")

    cause, _ = await run_failing(AsyncPythonTask("t", fails).as_async_pipeline())
    assert isinstance(cause, ConnectionError)
    assert calls == 1


async def test_a_long_policy_fails_with_the_tasks_own_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # factor ** 1024 is too large for a float: the wait after attempt 1025 used to raise
    # OverflowError, which replaced the task's error. With a tiny backoff the waits stay
    # short enough for the clock, so the run reaches its last attempt.
    calls = 0

    async def always_fails() -> None:
        nonlocal calls
        calls += 1
        raise ConnectionError(f"attempt {calls}")

    policy = Retry(attempts=1100, backoff=1e-300)
    cause, run_log = await run_failing(
        AsyncPythonTask("t", always_fails, retry=policy).as_async_pipeline()
    )
    assert isinstance(cause, ConnectionError)
    assert str(cause) == "attempt 1100"
    assert len(run_log.steps["t"].attempts) == 1100


def test_a_wait_too_large_for_a_float_is_capped_not_raised() -> None:
    policy = Retry(attempts=1100)
    assert policy.delay(1024) == 2.0**1023
    assert policy.delay(1025) == sys.float_info.max
    assert policy.delay(10**6) == sys.float_info.max
    assert Retry(attempts=1100, max_backoff=60).delay(1025) == 60
    assert Retry(backoff=1e-300, factor=2).delay(1101) == pytest.approx(math.ldexp(1e-300, 1100))


@settings(max_examples=50, deadline=None)  # no wall-clock limit: never load-dependent
@given(
    backoff=st.floats(min_value=0, max_value=sys.float_info.max) | st.integers(0, 2**1023),
    factor=st.floats(min_value=0, max_value=sys.float_info.max) | st.integers(0, 2**1023),
    max_backoff=st.none() | st.floats(min_value=0, max_value=sys.float_info.max),
    failed_attempt=st.integers(min_value=1, max_value=10**9),
)
def test_every_delay_is_a_finite_float_in_range(
    backoff: float, factor: float, max_backoff: float | None, failed_attempt: int
) -> None:
    delay = Retry(
        attempts=failed_attempt + 1, backoff=backoff, factor=factor, max_backoff=max_backoff
    ).delay(failed_attempt)
    assert isinstance(delay, float)
    assert math.isfinite(delay)
    assert 0 <= delay <= (sys.float_info.max if max_backoff is None else max_backoff)
