"""compat matches the reference's surface that applications touch (issue 10, points 1-5).

The modules (``runnable.names``, ``.exceptions``, ``.defaults``, ``.sdk``), the environment
variables read at the call, the positional end-event rule, the task attributes, and retry,
replay, readers and SSE from asyncio. Plain sync tests running their own asyncio loop, as in
``test_compat_asyncio.py``.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import re
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
import runnable
from runnable import (
    AsyncPipeline,
    AsyncPythonTask,
    Map,
    Parallel,
    defaults,
    exceptions,
    names,
)

import runnable_trio
from runnable_trio import Status


def run_asyncio(main: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    with asyncio.Runner(loop_factory=asyncio.SelectorEventLoop) as runner:
        return runner.run(main())


async def drain(run: Any) -> list[dict[str, Any]]:
    return [event async for event in run]


# --- runnable.names ------------------------------------------------------------------------


def test_random_names_are_adjective_surname() -> None:
    drawn = {names.get_random_name() for _ in range(200)}
    assert len(drawn) > 150  # 74 x 74 names: repeats are rare
    for name in drawn:
        adjective, surname = name.split("-")
        assert adjective in names.ADJECTIVES
        assert surname in names.SURNAMES
    assert re.fullmatch(r"[a-z]+_[a-z]+", names.get_random_name(sep="_"))


def test_generated_run_ids_look_like_the_references_and_are_unique() -> None:
    async def main() -> list[str]:
        pipeline = AsyncPythonTask("noop", noop).as_async_pipeline()
        runs = [pipeline.execute_streaming() for _ in range(50)]
        for run in runs:
            await drain(run)
        return [run.run_id for run in runs]

    ids = run_asyncio(main)
    assert len(set(ids)) == 50
    for run_id in ids:
        assert re.fullmatch(r"[a-z]+-[a-z]+-\d{6}-[0-9a-f]+", run_id), run_id


async def noop() -> None:
    pass


# --- runnable.exceptions -------------------------------------------------------------------


async def broken(text: str = "x") -> str:
    raise ValueError(f"bad input {text!r}")


def test_a_failed_run_is_catchable_as_both_execution_failed_errors() -> None:
    async def main() -> None:
        run = AsyncPythonTask("broken", broken).as_async_pipeline().execute_streaming()
        with pytest.raises(exceptions.ExecutionFailedError) as caught:
            await drain(run)
        assert isinstance(caught.value, runnable_trio.ExecutionFailedError)
        assert caught.value.run_id == run.run_id
        # The function's own exception, wrapped as the reference wraps it.
        command = caught.value.__cause__
        assert isinstance(command, exceptions.CommandCallError)
        assert command.step == "broken"
        assert str(command) == "ValueError: bad input 'x'"
        assert isinstance(command.__cause__, ValueError)
        assert run.run_log.status is Status.FAIL

    run_asyncio(main)


def test_the_framework_s_own_step_errors_are_not_wrapped() -> None:
    async def needs(missing: int) -> None:
        pass

    async def main() -> None:
        run = AsyncPythonTask("needs", needs).as_async_pipeline().execute_streaming()
        with pytest.raises(exceptions.ExecutionFailedError) as caught:
            await drain(run)
        assert isinstance(caught.value.__cause__, runnable_trio.ParameterError)

    run_asyncio(main)


def test_a_reused_run_id_is_run_log_exists_error_at_the_call() -> None:
    async def main() -> None:
        pipeline = AsyncPythonTask("noop", noop).as_async_pipeline()
        await drain(pipeline.execute_streaming(run_id="taken"))
        with pytest.raises(exceptions.RunLogExistsError, match="'taken' already exists") as c:
            pipeline.execute_streaming(run_id="taken")
        assert isinstance(c.value, runnable_trio.RunConfigurationError)
        assert c.value.run_id == "taken"
        with pytest.raises(exceptions.RunLogExistsError):
            pipeline.stream(run_id="taken")

    run_asyncio(main)


def test_compat_errors_round_trip_through_pickle() -> None:
    for error in (
        exceptions.CommandCallError("a.b", "ValueError: x"),
        exceptions.RunLogExistsError("r1"),
        exceptions.RunLogNotFoundError("r2", "here"),
        exceptions.RetryValidationError("run 'r3' succeeded"),
    ):
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error)
        assert str(copy) == str(error)
        assert vars(copy) == vars(error)


def test_the_sync_executors_exceptions_are_absent_not_stubbed() -> None:
    for name in ("JobLogNotFoundError", "NodeNotFoundError", "SecretNotFoundError"):
        assert not hasattr(exceptions, name)


# --- runnable.defaults and runnable.sdk ----------------------------------------------------


def test_defaults_have_the_references_values() -> None:
    assert defaults.NAME == defaults.LOGGER_NAME == "runnable"
    assert defaults.LOG_LEVEL == "WARNING"
    assert defaults.PARAMETER_PREFIX == "RUNNABLE_PRM_"
    for env_name in (
        "RUNNABLE_CONFIGURATION_FILE",
        "RUNNABLE_RUN_TAG",
        "RUNNABLE_PARAMETERS_FILE",
    ):
        assert getattr(defaults, env_name) == env_name
    assert defaults.ENV_RUN_ID == "RUNNABLE_RUN_ID"
    assert defaults.RETRY_RUN_ID == "RUNNABLE_RETRY_RUN_ID"
    assert [defaults.CREATED, defaults.PROCESSING, defaults.SUCCESS, defaults.FAIL] == [
        "CREATED",
        "PROCESSING",
        "SUCCESS",
        "FAIL",
    ]
    assert defaults.PROCESSING == Status.PROCESSING
    assert defaults.LOG_LOCATION_FOLDER == ".run_log_store"
    assert defaults.CATALOG_LOCATION_FOLDER == ".catalog"
    assert defaults.USER_CONFIG_FILE == "runnable-config.yaml"
    assert (defaults.RANDOM_RUN_ID_LEN, defaults.MAX_TIME) == (6, 86400)


def test_sdk_re_exports_the_step_classes() -> None:
    from runnable import sdk

    for name in sdk.__all__:
        assert getattr(sdk, name) is getattr(runnable, name)
    assert {"AsyncPipeline", "AsyncPythonTask", "Parallel", "Map", "Conditional"} <= set(
        sdk.__all__
    )


# --- environment variables -----------------------------------------------------------------


def test_run_id_from_the_environment_when_the_argument_is_empty(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RUNNABLE_RUN_ID", "from-env")

    async def main() -> None:
        pipeline = AsyncPythonTask("noop", noop).as_async_pipeline()
        run = pipeline.execute_streaming()
        assert run.run_id == "from-env"
        await drain(run)
        explicit = pipeline.execute_streaming(run_id="given")
        assert explicit.run_id == "given"
        await drain(explicit)

    run_asyncio(main)
    import os

    assert os.environ["RUNNABLE_RUN_ID"] == "from-env"  # read, never written
    assert runnable.read_run_log("from-env").status is Status.SUCCESS


def echo(greeting: str) -> str:
    return greeting


def test_parameters_and_configuration_files_from_the_environment_win(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "env-params.yaml").write_text("greeting: from the environment\n")
    (tmp_path / "arg-params.yaml").write_text("greeting: from the argument\n")
    (tmp_path / "env-config.yaml").write_text("run_log_store:\n  folder: env-logs\n")
    (tmp_path / "arg-config.yaml").write_text("run_log_store:\n  folder: arg-logs\n")
    monkeypatch.setenv("RUNNABLE_PARAMETERS_FILE", "env-params.yaml")
    monkeypatch.setenv("RUNNABLE_CONFIGURATION_FILE", "env-config.yaml")
    pipeline = AsyncPythonTask("echo", echo, returns=["said"]).as_async_pipeline()

    async def main() -> None:
        run = pipeline.execute_streaming(
            configuration_file="arg-config.yaml", parameters_file="arg-params.yaml", run_id="e1"
        )
        await drain(run)
        assert run.run_log.parameters_out["said"] == "from the environment"
        async with pipeline.stream(
            configuration_file="arg-config.yaml", parameters_file="arg-params.yaml", run_id="e2"
        ) as events:
            await drain(events)
            assert events.run_log.parameters_out["said"] == "from the environment"

    run_asyncio(main)
    assert sorted(p.name for p in (tmp_path / "env-logs").glob("*.json")) == ["e1.json", "e2.json"]
    assert not (tmp_path / "arg-logs").exists()


def test_retry_run_id_from_the_environment_makes_the_call_a_retry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []

    async def flaky(text: str) -> str:
        calls.append(text)
        if len(calls) == 1:
            raise RuntimeError("first time")
        return text.upper()

    pipeline = AsyncPythonTask("flaky", flaky, returns=["out"]).as_async_pipeline()

    async def first() -> None:
        with pytest.raises(exceptions.ExecutionFailedError):
            await drain(pipeline.execute_streaming(run_id="r", parameters={"text": "hi"}))

    async def again() -> None:
        run = pipeline.execute_streaming(parameters={"text": "ignored"})
        assert isinstance(run, runnable.HostRetry)
        assert run.run_id == "r"
        await drain(run)
        assert run.run_log is not None
        assert run.run_log.status is Status.SUCCESS

    run_asyncio(first)
    monkeypatch.setenv("RUNNABLE_RETRY_RUN_ID", "r")
    run_asyncio(again)
    assert calls == ["hi", "hi"]  # the retry runs with the recorded parameters
    assert runnable.read_run_log("r").parameters_out["out"] == "HI"


# --- the end event, by position ------------------------------------------------------------


async def spanish(text: str) -> AsyncIterator[dict[str, Any]]:
    yield {"type": "chunk", "text": "..."}
    yield {"type": "done", "spanish_translation": f"es:{text}"}


async def two_values() -> AsyncIterator[dict[str, Any]]:
    yield {"type": "done", "b": 2, "a": 1}


def returns_of(task: AsyncPythonTask, **parameters: Any) -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        run = task.as_async_pipeline().execute_streaming(parameters=parameters)
        await drain(run)
        return dict(run.run_log.parameters_out)

    result: dict[str, Any] = run_asyncio(main)
    return result


def test_one_end_event_key_gives_its_value_whatever_its_name() -> None:
    task = AsyncPythonTask("t", spanish, returns=["translation_result"])
    assert returns_of(task, text="hola")["translation_result"] == "es:hola"


def test_several_keys_map_positionally_even_where_the_names_disagree(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="runnable"):
        out = returns_of(AsyncPythonTask("t", two_values, returns=["a", "b"]))
    assert (out["a"], out["b"]) == (2, 1)  # the reference's answer: position wins
    assert "by position" in caplog.text
    # One return name takes the whole tuple, as a coroutine returning a tuple would.
    assert returns_of(AsyncPythonTask("t", two_values, returns=["both"]))["both"] == (2, 1)


def test_runnable_trio_itself_still_maps_by_name() -> None:
    task = runnable_trio.AsyncPythonTask("t", two_values, returns=["a", "b"])

    async def main() -> dict[str, Any]:
        async with task.as_async_pipeline().stream() as events:
            await drain(events)
            return dict(events.run_log.parameters_out)

    import trio

    out = trio.run(main)
    assert (out["a"], out["b"]) == (1, 2)


def test_an_end_event_with_no_value_is_a_returns_error() -> None:
    async def empty() -> AsyncIterator[dict[str, Any]]:
        yield {"type": "done"}

    async def main() -> None:
        run = AsyncPythonTask("t", empty, returns=["x"]).as_async_pipeline().execute_streaming()
        with pytest.raises(exceptions.ExecutionFailedError) as caught:
            await drain(run)
        assert isinstance(caught.value.__cause__, runnable_trio.ReturnsError)
        assert "no value besides 'type'" in str(caught.value.__cause__)

    run_asyncio(main)


def test_map_items_return_through_a_differently_named_end_key() -> None:
    # The shape of the reference's FastAPI example: its Map endpoint relies on this rule.
    branch = AsyncPythonTask("translate", spanish, returns=["translation_result"])
    pipeline = AsyncPipeline(
        [Map(name="each", branch=branch.as_async_pipeline(), iterate_on="texts", iterate_as="text")]
    )

    async def main() -> Any:
        run = pipeline.execute_streaming(parameters={"texts": ["a", "b"]})
        await drain(run)
        return run.run_log.parameters_out["translation_result"]

    assert run_asyncio(main) == ["es:a", "es:b"]


# --- task and pipeline attributes ----------------------------------------------------------


class Callable_:
    async def __call__(self) -> None:
        pass


def test_command_and_command_type() -> None:
    task = AsyncPythonTask("t", spanish)
    assert task.command == f"{__name__}.spanish"
    assert task.command_type == "async-python"
    assert AsyncPythonTask("c", Callable_()).command == f"{__name__}.Callable_"


def test_pipeline_steps_read_as_a_list() -> None:
    first = AsyncPythonTask("first", noop)
    second = Parallel("both", {"x": AsyncPythonTask("x", noop).as_async_pipeline()})
    pipeline = AsyncPipeline([first, second])
    steps = pipeline.steps
    assert len(steps) == 2
    assert steps[0] is first
    assert steps[-1] is second
    assert [s.name for s in steps] == ["first", "both"]
    assert list(steps) == [first, second]
    assert second in steps
    assert steps.index(second) == 1


# --- retry, readers, SSE from asyncio ------------------------------------------------------


def test_retry_streaming_and_readers_under_asyncio_run() -> None:
    attempts: list[int] = []

    async def once_broken() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("transient")
        return "ok"

    pipeline = AsyncPythonTask("once", once_broken, returns=["out"]).as_async_pipeline()

    async def main() -> None:
        with pytest.raises(exceptions.ExecutionFailedError):
            await drain(pipeline.execute_streaming(run_id="rr", event_log=True))
        assert runnable.read_run_log("rr").status is Status.FAIL
        retry = runnable.retry_streaming(pipeline, "rr")
        events = await drain(retry)
        assert events == []  # a coroutine task streams no events of its own
        assert retry.run_log is not None
        assert retry.run_log.status is Status.SUCCESS
        [summary] = runnable.list_runs()
        assert (summary.run_id, summary.status) == ("rr", Status.SUCCESS)
        with pytest.raises(exceptions.RetryValidationError, match="succeeded"):
            runnable.retry_streaming(pipeline, "rr")
        with pytest.raises(exceptions.RunLogNotFoundError):
            runnable.retry_streaming(pipeline, "nothing-here")
        with pytest.raises(exceptions.RunLogNotFoundError):
            runnable.read_run_log("nothing-here")

    run_asyncio(main)
    assert len(attempts) == 2


def test_retry_stream_under_asyncio_run() -> None:
    attempts: list[int] = []

    async def once_broken() -> AsyncIterator[dict[str, Any]]:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("transient")
        yield {"type": "done", "value": 42}

    pipeline = AsyncPythonTask("once", once_broken, returns=["out"]).as_async_pipeline()

    async def main() -> None:
        with pytest.raises(exceptions.ExecutionFailedError):
            await drain(pipeline.execute_streaming(run_id="rs"))
        async with runnable.retry_stream(pipeline, "rs") as events:
            assert await drain(events) == [{"type": "done", "value": 42}]
        assert runnable.read_run_log("rs").parameters_out["out"] == 42

    run_asyncio(main)


def test_sse_helpers_frame_a_live_run_and_its_replay_under_asyncio() -> None:
    pipeline = AsyncPythonTask("t", spanish, returns=["r"]).as_async_pipeline()

    async def main() -> None:
        run = pipeline.execute_streaming(parameters={"text": "x"}, event_log=True)
        live = [frame async for frame in runnable.SSEStream(run)]
        assert live[0] == 'id: 1\ndata: {"type":"chunk","text":"..."}\n\n'
        after = runnable.parse_last_event_id("1")
        replayed = [frame async for frame in runnable.SSEStream(runnable.replay(run.run_id, after))]
        assert replayed == live[1:]
        assert runnable.format_sse({"type": "x"}) == 'data: {"type":"x"}\n\n'
        assert runnable.SSE_MEDIA_TYPE == "text/event-stream"

    run_asyncio(main)


# --- issue 9: every record final, KeyboardInterrupt as itself ------------------------------


async def slow_start() -> AsyncIterator[dict[str, Any]]:
    await asyncio.sleep(60)
    yield {"type": "never"}


def test_a_consumer_cancelled_before_its_run_starts_ends_it_cancelled_with_its_record() -> None:
    async def main() -> None:
        run = AsyncPythonTask("slow", slow_start).as_async_pipeline().execute_streaming()
        first = asyncio.ensure_future(anext(run))
        await asyncio.sleep(0)  # it is starting the loop's Trio guest run
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        assert run.run_log.status is Status.CANCELLED
        assert runnable.read_run_log(run.run_id).status is Status.CANCELLED
        with pytest.raises(StopAsyncIteration):
            await anext(run)

    run_asyncio(main)


def test_the_loser_of_two_runs_with_one_id_ends_final() -> None:
    async def main() -> None:
        pipeline = AsyncPythonTask("noop", noop).as_async_pipeline()
        winner = pipeline.execute_streaming(run_id="same")
        loser = pipeline.execute_streaming(run_id="same")  # both accepted at the call
        await drain(winner)
        with pytest.raises(exceptions.ExecutionFailedError, match="already exists"):
            await drain(loser)
        assert winner.run_log.status is Status.SUCCESS
        assert loser.run_log.status is Status.FAIL
        assert runnable.read_run_log("same").status is Status.SUCCESS

    run_asyncio(main)


@pytest.mark.parametrize("exception", [KeyboardInterrupt, SystemExit])
def test_keyboard_interrupt_from_a_sync_task_reaches_the_consumer_as_itself(
    exception: type[BaseException],
) -> None:
    def interrupted() -> None:
        raise exception()

    pipeline = AsyncPythonTask("stop", interrupted).as_async_pipeline()
    seen: list[Any] = []

    async def main() -> None:
        run = pipeline.execute_streaming(run_id="ki")
        seen.append(run)
        try:
            await drain(run)
        except exception:
            seen.append("caught")
            raise

    with pytest.raises(exception):
        run_asyncio(main)
    assert seen[1:] == ["caught"]
    assert seen[0].run_log.status is Status.CANCELLED
    assert runnable.read_run_log("ki").status is Status.CANCELLED


def test_keyboard_interrupt_from_an_asyncio_task_ends_the_run_cancelled() -> None:
    async def interrupted() -> None:
        await asyncio.sleep(0)
        raise KeyboardInterrupt

    pipeline = AsyncPythonTask("stop", interrupted).as_async_pipeline()

    async def main() -> None:
        await drain(pipeline.execute_streaming(run_id="ki-async"))

    # asyncio lets KeyboardInterrupt out of the loop at once, as it does for any task.
    with pytest.raises(KeyboardInterrupt):
        run_asyncio(main)
    assert runnable.read_run_log("ki-async").status is Status.CANCELLED
