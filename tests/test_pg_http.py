"""Two HTTP server processes sharing one PostgreSQL database (``examples/pg_workers.py``).

A run started on one worker is resumed (``Last-Event-ID``) on the other; runs are listed and
read from this, a third, process; a worker killed mid-run leaves its run dead and the other
worker's retry completes it; 100 concurrent runs across both do not mix; runs go on after the
database restarts.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from runnable_trio import RunConfigurationError, Status, list_runs, read_run_log, replay
from tests.pgserver import PostgresServer
from tests.servers import messages, running_servers

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(300),  # processes and a real server on a loaded machine
    # As in test_http: httpx leaves an abandoned body's async generators to the collector.
    pytest.mark.filterwarnings(
        r"ignore:Exception ignored in. <async_generator object "
        r"(Response\.aiter_|AsyncResponseStream\.|BoundAsyncStream\.|PoolByteStream\."
        r"|HTTP11ConnectionByteStream\.|AsyncHTTP11Connection\._receive_response_body)"
        ":pytest.PytestUnraisableExceptionWarning"
    ),
]

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "pg_workers.py"


@pytest.fixture(scope="module")
def config(pg_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("pgconfig") / "workers.yaml"
    path.write_text(
        f"run_log_store:\n  type: postgres\n  dsn: '{pg_server.create_database()}'\n"
        "event_log: true\n",
        encoding="utf-8",
    )
    return str(path)


@pytest.fixture(scope="module")
def workers(config: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    run = [sys.executable, str(EXAMPLE), "--config", config, "--port"]
    commands = {"a": ["env", "PG_WORKERS_HANG=1", *run], "b": run}
    with running_servers(commands, tmp_path_factory) as urls:
        yield urls


async def chat(url: str, prompt: str) -> tuple[str, list[dict[str, Any]]]:
    async with (
        httpx.AsyncClient(base_url=url, timeout=60) as client,
        client.stream("POST", "/chat", json={"prompt": prompt}) as response,
    ):
        assert response.status_code == 200
        return response.headers["x-run-id"], [m async for m in messages(response)]


async def resume(url: str, run_id: str, after: int) -> list[dict[str, Any]]:
    async with (
        httpx.AsyncClient(base_url=url, timeout=60) as client,
        client.stream(
            "GET", f"/runs/{run_id}/events", headers={"Last-Event-ID": str(after)}
        ) as response,
    ):
        assert response.status_code == 200
        return [m async for m in messages(response)]


async def recorded(config: str, run_id: str, count: int) -> None:
    """Return once the run's event log holds ``count`` events (read live, from here)."""
    with trio.fail_after(120):
        while True:
            try:
                source = replay(run_id, configuration_file=config)
                break
            except RunConfigurationError:  # no line yet: the worker writes when it is idle
                await trio.sleep(0.05)
        for _ in range(count):
            await anext(source)


def answer(events: list[dict[str, Any]]) -> str:
    return "".join(e["data"]["text"] for e in events if e["data"]["type"] == "chunk")


async def test_a_run_s_stream_resumes_on_the_other_worker(
    workers: dict[str, str], config: str
) -> None:
    prompt = "resume me elsewhere " + "word " * 15
    async with (
        httpx.AsyncClient(base_url=workers["a"], timeout=60) as client,
        client.stream("POST", "/chat", json={"prompt": prompt}) as response,
    ):
        run_id = response.headers["x-run-id"]
        async with contextlib.aclosing(messages(response)) as live:
            first = [await anext(live) for _ in range(3)]
            resumed = await resume(workers["b"], run_id, 3)  # follows the run on a
            rest = [m async for m in live]
    assert resumed == rest
    assert [m["id"] for m in first + rest] == [str(n) for n in range(1, len(rest) + 4)]
    assert answer(first + rest) == " ".join(f"Response to: {prompt}".split()) + " "
    # Read and listed from this process too.
    assert read_run_log(run_id, configuration_file=config).status is Status.SUCCESS
    assert run_id in [run.run_id for run in list_runs(configuration_file=config)]
    assert await resume(workers["b"], run_id, len(first + rest)) == []


async def test_100_concurrent_runs_across_two_workers_keep_to_themselves(
    workers: dict[str, str], config: str
) -> None:
    results: dict[str, tuple[str, list[dict[str, Any]]]] = {}

    async def one(number: int) -> None:
        prompt = f"prompt number {number}"
        url = workers["a" if number % 2 else "b"]
        results[prompt] = await chat(url, prompt)

    with trio.fail_after(240):
        async with trio.open_nursery() as nursery:
            for number in range(100):
                nursery.start_soon(one, number)
    assert len({run_id for run_id, _ in results.values()}) == 100
    for prompt, (run_id, events) in results.items():
        assert answer(events) == f"Response to: {prompt} "
        assert [m["id"] for m in events] == [str(n) for n in range(1, len(events) + 1)]
        assert read_run_log(run_id, configuration_file=config).parameters_in["prompt"] == prompt
    statuses = {run.run_id: run.status for run in list_runs(configuration_file=config)}
    assert all(statuses[run_id] is Status.SUCCESS for run_id, _ in results.values())


async def test_the_workers_go_on_after_the_database_restarts(
    workers: dict[str, str], pg_server: PostgresServer
) -> None:
    await chat(workers["a"], "before the restart")
    await trio.to_thread.run_sync(pg_server.stop)
    await trio.to_thread.run_sync(pg_server.start)
    for url in workers.values():
        run_id, events = await chat(url, "after the restart")
        assert answer(events) == "Response to: after the restart "
        assert (await resume(url, run_id, 0)) == events


async def test_a_killed_worker_s_run_is_dead_and_the_other_worker_completes_it(
    workers: dict[str, str], config: str
) -> None:
    async with (
        httpx.AsyncClient(base_url=workers["a"], timeout=60) as client,
        client.stream("POST", "/chat", json={"prompt": "!hang half way"}) as response,
    ):
        run_id = response.headers["x-run-id"]
        pid = int(response.headers["x-worker"])
        async with contextlib.aclosing(messages(response)) as live:
            first = [await anext(live) for _ in range(3)]  # status, "Response ", "to: "
            await recorded(config, run_id, 3)  # the worker is killed once they are in the log
            os.kill(pid, signal.SIGKILL)
            with pytest.raises(httpx.HTTPError):
                async for _ in live:
                    pass
    async with httpx.AsyncClient(base_url=workers["b"], timeout=60) as client:
        listed = (await client.get("/runs")).json()
        assert {"run_id": run_id, "status": "PROCESSING", "alive": False} in listed
        async with client.stream("POST", f"/runs/{run_id}/retry") as retried:
            assert retried.status_code == 200
            rest = [m async for m in messages(retried)]
    assert rest[-1]["data"]["type"] == "done", rest[-3:]
    numbers = [int(m["id"]) for m in rest]  # on from the last event the log recorded
    assert numbers == list(range(numbers[0], numbers[0] + len(rest)))
    assert numbers[0] > int(first[-1]["id"])
    assert answer(rest) == "Response to: !hang half way "
    done = read_run_log(run_id, configuration_file=config)
    assert done.status is Status.SUCCESS
    assert done.parameters_out["full_text"] == "Response to: !hang half way"
