"""The test suite of answer_pipeline.py, written with runnable_trio.testing.

Run it with ``pytest examples/testing``. The fixtures come from the ``runnable_trio`` pytest
plugin, installed with the package: ``runnable_config`` (a run-log store and catalog in the
test's own folder), ``runnable_clock`` (virtual time: the pipeline's sleeps take no time) and
``leave`` (with the ``leave_every_way`` marker).
"""

from __future__ import annotations

import pytest
import trio
import trio.testing
from answer_pipeline import CLOSED, answer_pipeline

from runnable_trio import ReturnsError, Status, StepTimeoutError
from runnable_trio.testing import (
    FAULTS_KEY,
    FailPut,
    Hang,
    Raise,
    StopAfter,
    Way,
    assert_events,
    assert_final,
    inject,
    run_to_end,
)

QUESTION = {"question": "tests"}


@pytest.fixture(autouse=True)
def _clean() -> None:
    CLOSED.clear()


async def test_the_answer_streams_token_by_token(
    runnable_config: str, runnable_clock: trio.testing.MockClock
) -> None:
    events, run_log, error = await run_to_end(
        answer_pipeline(), parameters=QUESTION, configuration_file=runnable_config
    )
    assert error is None
    assert_final(run_log)
    assert_events(
        events,
        [{"type": "token", "text": t} for t in ("About", "tests:", "it", "depends.\nBut")]
        + [{"type": "token", "text": t} for t in ("mostly", "yes.")],
        types=["token"],
    )
    assert_events(
        events,
        [{"type": "token"}] * 6
        + [{"type": "done"}, {"type": "translation"}, {"type": "done"}]
        + [{"type": "translation"}, {"type": "done"}],
        subset=True,
    )
    assert run_log.parameters_out["summary"] == ["About...", "But..."]
    assert trio.current_time() == pytest.approx(2.7)  # virtual seconds


async def test_a_summary_that_fails_once_is_retried(
    runnable_config: str, runnable_clock: trio.testing.MockClock
) -> None:
    with inject({"summaries.1.summarise": Raise(ConnectionError("reset"), attempt=1)}) as plan:
        result = await run_to_end(
            answer_pipeline(), parameters=QUESTION, configuration_file=runnable_config
        )
    assert result.error is None
    item = result.run_log.steps["summaries"].branches["1"].steps["summarise"]
    assert [a.status for a in item.attempts] == [Status.FAIL, Status.SUCCESS]
    assert item.attempts[0].metrics[FAULTS_KEY] == ["raise ConnectionError('reset') before"]
    assert [str(i) for i in plan.injected] == [
        "summaries.1.summarise attempt 1: raise ConnectionError('reset') before"
    ]


async def test_a_summary_that_always_hangs_times_out_on_every_attempt(
    runnable_config: str, runnable_clock: trio.testing.MockClock
) -> None:
    start = trio.current_time()
    result = await run_to_end(
        answer_pipeline(),
        parameters=QUESTION,
        configuration_file=runnable_config,
        faults={"summaries.0.summarise": Hang()},
    )
    assert isinstance(result.cause, StepTimeoutError)
    attempts = result.run_log.steps["summaries"].branches["0"].steps["summarise"].attempts
    assert len(attempts) == 3
    # 2.2 s to get there, three 10 s timeouts, 1 s and 2 s of backoff between them.
    assert trio.current_time() - start == pytest.approx(2.2 + 30 + 3)
    assert_final(result.run_log)


async def test_an_llm_stream_that_stalls_after_five_tokens_fails_on_its_idle_timeout(
    runnable_config: str, runnable_clock: trio.testing.MockClock
) -> None:
    result = await run_to_end(
        answer_pipeline(),
        parameters=QUESTION,
        configuration_file=runnable_config,
        faults={"draft": Hang(after_event=5)},
    )
    assert isinstance(result.cause, StepTimeoutError)
    assert [e["text"] for e in result.events] == [
        "About",
        "tests:",
        "it",
        "depends.\nBut",
        "mostly",
    ]
    assert CLOSED == ["draft"]  # the generator was closed


async def test_a_translation_cut_short_fails_clearly(
    runnable_config: str, runnable_clock: trio.testing.MockClock
) -> None:
    result = await run_to_end(
        answer_pipeline(),
        parameters=QUESTION,
        configuration_file=runnable_config,
        faults={"translate.*.llm": StopAfter(1)},
    )
    assert isinstance(result.cause, ReturnsError)
    assert "french_text" in str(result.cause) or "spanish_text" in str(result.cause)
    assert sorted(CLOSED) == ["draft", "translate french", "translate spanish"]


async def test_a_full_disk_fails_the_save(
    runnable_config: str, runnable_clock: trio.testing.MockClock
) -> None:
    result = await run_to_end(
        answer_pipeline(),
        parameters=QUESTION,
        configuration_file=runnable_config,
        faults={"save": FailPut()},
    )
    assert isinstance(result.cause, OSError)
    assert result.run_log.step == "save"
    assert "translate" not in result.run_log.steps


@pytest.mark.leave_every_way(ways=[Way.SSE_DISCONNECT], at=4)
async def test_a_client_gone_after_the_fifth_token_stops_everything(
    leave, runnable_config: str, runnable_clock: trio.testing.MockClock
) -> None:
    left = await leave.run(
        answer_pipeline(), parameters=QUESTION, configuration_file=runnable_config
    )
    assert len(left.frames) == 5
    assert left.run_log.status is Status.CANCELLED
    assert CLOSED == ["draft"]


@pytest.mark.leave_every_way
async def test_leaving_any_way_at_any_point_leaves_nothing_behind(
    leave, runnable_config: str, runnable_clock: trio.testing.MockClock
) -> None:
    # The checks are leave.run's own: no task of the run alive, every record final (in
    # memory and on disk), every call of the pipeline's functions ended.
    await leave.run(answer_pipeline(), parameters=QUESTION, configuration_file=runnable_config)


@pytest.mark.leave_every_way(surfaces=["execute_streaming"], ways=["break", "aclose"], at=[0, 8])
async def test_leaving_while_a_summary_is_being_retried(
    leave, runnable_config: str, runnable_clock: trio.testing.MockClock
) -> None:
    with inject({"summaries.*.summarise": Raise(ConnectionError, attempt=1)}):
        await leave.run(answer_pipeline(), parameters=QUESTION, configuration_file=runnable_config)
