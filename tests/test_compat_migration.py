"""The migration suite: an application written for the reference, unchanged, over real HTTP.

``tests/migration/app.py`` is written the way the reference's FastAPI streaming example is
(prompts through ``os.environ["RUNNABLE_PRM_..."]``, run ids from ``names.get_random_name()``,
SSE formatted by hand, end events mapped by position). It runs under uvicorn as a real process
in a folder of its own; httpx drives it. Every wait here is on something the test can see (an
event received, a record on disk) with a generous overall timeout, never a timing margin.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from runnable_trio._filestore import FileRunLogStore
from runnable_trio._jsoncodec import dumps
from runnable_trio._runlog import run_log_to_dict
from tests.servers import free_port, wait_until_listening

pytestmark = [
    pytest.mark.slow,
    # The first test's setup starts the server: on a loaded machine that takes a while.
    pytest.mark.timeout(240),
    # httpx leaves a half-read body's async generators to the garbage collector when a client
    # disconnects on purpose; Trio warns about each one. Only those are ignored.
    pytest.mark.filterwarnings(
        r"ignore:Exception ignored in. <async_generator object "
        r"(Response\.aiter_|AsyncResponseStream\.|BoundAsyncStream\.|PoolByteStream\."
        r"|HTTP11ConnectionByteStream\.|AsyncHTTP11Connection\._receive_response_body)"
        ":pytest.PytestUnraisableExceptionWarning"
    ),
]

APP_DIR = Path(__file__).resolve().parent / "migration"
ENDPOINTS = ["chat", "chat-and-summarize", "translate/parallel", "translate/map",
             "translate/conditional"]  # fmt: skip
FRAME = re.compile(r"data: (?P<json>[^\n]+)\n\n")
PATIENCE = 30.0  # seconds: an overall bound for a wait, never a timing assertion


class Server:
    def __init__(self, url: str, folder: Path) -> None:
        self.url = url
        self.folder = folder

    def run_log(self, run_id: str) -> dict[str, Any] | None:
        """The run's record as its JSON holds it (read as the library's readers read it)."""
        try:
            run_log = FileRunLogStore(self.folder / ".run_log_store").load(run_id)
        except KeyError:
            return None
        data: dict[str, Any] = json.loads(dumps(run_log_to_dict(run_log)))
        return data

    async def status_becomes(self, run_id: str, status: str) -> dict[str, Any]:
        """The run's record once it says ``status`` (fails after ``PATIENCE`` seconds)."""
        with trio.fail_after(PATIENCE):
            while True:
                record = self.run_log(run_id)
                if record is not None and record["status"] == status:
                    return record
                await trio.sleep(0.01)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("migration")
    port = free_port()
    log = folder / "server.log"
    command = [sys.executable, "-m", "uvicorn", "app:app", "--app-dir", str(APP_DIR),
               "--log-level", "warning", "--port", str(port)]  # fmt: skip
    with log.open("wb") as output:
        process = subprocess.Popen(command, cwd=folder, stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_until_listening(port, process, log)
        yield Server(f"http://127.0.0.1:{port}", folder)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert "Traceback" not in log.read_text(), log.read_text()


def client_for(server: Server) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=server.url, timeout=PATIENCE, limits=httpx.Limits(max_connections=100)
    )


@contextlib.asynccontextmanager
async def events_of(
    client: httpx.AsyncClient, endpoint: str, prompt: str, **extra: Any
) -> AsyncIterator[tuple[str, AsyncIterator[dict[str, Any]]]]:
    """POST to ``endpoint``; yield the run id and its SSE events, each frame checked exactly."""
    body = {"prompt": prompt, **extra}
    async with client.stream("POST", f"/{endpoint}", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")

        async def frames() -> AsyncIterator[dict[str, Any]]:
            pending = ""
            async for text in response.aiter_text():
                pending += text
                while "\n\n" in pending:
                    frame, pending = pending.split("\n\n", 1)
                    match = FRAME.fullmatch(frame + "\n\n")
                    assert match, f"not a 'data: <json>' frame: {frame!r}"
                    yield json.loads(match["json"])
            assert pending == "", f"a partial frame at the end of the body: {pending!r}"

        async with contextlib.aclosing(frames()) as received:
            yield response.headers.get("x-run-id", ""), received


async def ask(client: httpx.AsyncClient, endpoint: str, prompt: str, **extra: Any) -> Any:
    async with events_of(client, endpoint, prompt, **extra) as (run_id, received):
        return run_id, [event async for event in received]


def text_of(events: list[dict[str, Any]], language: str | None = None) -> str:
    return "".join(
        e["text"]
        for e in events
        if e["type"] == "chunk" and (language is None or e.get("language") == language)
    )


def check_answer(endpoint: str, prompt: str, events: list[dict[str, Any]]) -> None:
    """The events of one request: its own prompt's answer, nobody else's."""
    assert events[-1]["type"] == "done", events[-1]
    assert not [e for e in events if e["type"] == "error"]
    answer = f"Answer to: {prompt}"
    if endpoint == "chat":
        assert text_of(events).strip() == answer
        assert events[-1] == {"type": "done", "response": answer}
    elif endpoint == "chat-and-summarize":
        summary = " ".join(answer.split()[:4]) + " ..."
        assert events[-1] == {"type": "done", "summary_text": summary}
        assert text_of(events).startswith(answer + " ")
    elif endpoint == "translate/conditional":
        assert text_of(events, "french").strip() == f"[french] {prompt}"
        assert {e.get("language") for e in events if e["type"] == "chunk"} == {"french"}
    else:  # parallel and map: three languages, interleaved
        for language in ("spanish", "french", "german"):
            assert text_of(events, language).strip() == f"[{language}] {prompt}"
        done = [e for e in events if e["type"] == "done"]
        assert len(done) == 3


def check_record(endpoint: str, prompt: str, record: dict[str, Any]) -> None:
    """The run's record: the results landed under the ``returns`` names (by position)."""
    out = record["parameters_out"]
    answer = f"Answer to: {prompt}"
    if endpoint in ("chat", "chat-and-summarize"):
        assert out["full_text"] == answer
    if endpoint == "chat-and-summarize":
        assert out["summary"] == " ".join(answer.split()[:4]) + " ..."
    if endpoint == "translate/parallel":
        for language in ("spanish", "french", "german"):
            assert out[f"{language}_result"] == f"[{language}] {prompt}"
    if endpoint == "translate/map":
        assert out["translation_result"] == [
            f"[{language}] {prompt}" for language in ("spanish", "french", "german")
        ]
    if endpoint == "translate/conditional":
        assert out["french_result"] == f"[french] {prompt}"


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_every_endpoint_answers_with_exact_sse_frames(server: Server, endpoint: str) -> None:
    prompt = f"tell me about {endpoint}"
    async with client_for(server) as client:
        run_id, events = await ask(client, endpoint, prompt, language="french")
    check_answer(endpoint, prompt, events)
    assert re.fullmatch(r"[a-z]+-[a-z]+-\d{6}-\d{6}", run_id)
    record = await server.status_becomes(run_id, "SUCCESS")
    check_record(endpoint, prompt, record)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_events_arrive_while_the_run_is_still_going(server: Server, endpoint: str) -> None:
    gate = f"incremental-{endpoint.replace('/', '-')}"
    prompt = f"gate:{gate} one two three"
    async with (
        client_for(server) as client,
        events_of(client, endpoint, prompt, language="french") as (run_id, received),
    ):
        first: list[dict[str, Any]] = []
        async for event in received:
            first.append(event)
            if event["type"] == "chunk":
                break
        # The model is held at the gate after its first word: these events came before the
        # run could finish, so they were streamed, not buffered to the end.
        assert first[0]["type"] == "status"
        record = server.run_log(run_id)
        assert record is not None
        assert record["status"] == "PROCESSING"
        assert (await client.post(f"/gates/{gate}")).status_code == 200
        rest = [event async for event in received]
    check_answer(endpoint, prompt, first + rest)
    await server.status_becomes(run_id, "SUCCESS")


async def test_twenty_concurrent_requests_each_get_their_own_answer(server: Server) -> None:
    answers: dict[str, tuple[str, str, list[dict[str, Any]]]] = {}

    async def one(number: int) -> None:
        endpoint = ENDPOINTS[number % len(ENDPOINTS)]
        prompt = f"question {number} for {endpoint}"
        run_id, events = await ask(client, endpoint, prompt, language="french")
        answers[prompt] = endpoint, run_id, events

    async with client_for(server) as client, trio.open_nursery() as nursery:
        for number in range(20):
            nursery.start_soon(one, number)
    assert len(answers) == 20
    assert len({run_id for _, run_id, _ in answers.values()}) == 20
    for prompt, (endpoint, run_id, events) in answers.items():
        check_answer(endpoint, prompt, events)
        check_record(endpoint, prompt, await server.status_becomes(run_id, "SUCCESS"))


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_a_client_disconnecting_mid_stream_cancels_its_run(
    server: Server, endpoint: str
) -> None:
    prompt = f"gate:never-{endpoint.replace('/', '-')} a story that never ends"
    async with client_for(server) as client:
        async with events_of(client, endpoint, prompt, language="french") as (run_id, received):
            for _ in range(2):
                await anext(received)
        # Leaving the block closed the connection half-way through the body; the model is
        # held at a gate nobody opens, so only the disconnect can end the run.
        record = await server.status_becomes(run_id, "CANCELLED")
        assert record["ended_at"] is not None
        health = await client.get("/health")
        assert health.status_code == 200
        assert health.json()["status"] == "ok"
        prompt = f"after the disconnect on {endpoint}"
        run_id, events = await ask(client, endpoint, prompt, language="french")
    check_answer(endpoint, prompt, events)
    await server.status_becomes(run_id, "SUCCESS")
