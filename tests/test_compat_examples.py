"""The reference's code examples (examples/reference/) run through ``runnable`` as written.

Each script runs in its own process, with a plain ``asyncio.run``, as a user would run it; they
all start at once so the module takes about as long as the slowest one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from tests.servers import messages, running_servers

REFERENCE = Path(__file__).resolve().parent.parent / "examples" / "reference"

SCRIPTS = [
    "basic_async",
    "llm_stream",
    "multi_step",
    "streaming_analysis",
    "parallel_translations",
    "map_languages",
    "custom_end_type",
    "best_practice_stream",
    "error_handling",
]


#: Eleven interpreters start at once: on a loaded machine that alone takes tens of seconds.
STARTUP = 300
# The first test using ``outputs`` waits for all of them (its setup counts against its timeout).
pytestmark = pytest.mark.timeout(STARTUP + 60)


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNNABLE_PRM_")}
    running = {}
    for name in SCRIPTS:
        cwd = tmp_path_factory.mktemp(name)
        running[name] = subprocess.Popen(
            [sys.executable, str(REFERENCE / f"{name}.py")],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    results = {}
    for name, process in running.items():
        stdout, stderr = process.communicate(timeout=STARTUP)
        results[name] = (process.returncode, stdout, stderr)
    return results


def test_every_script_has_a_docstring_saying_how_to_run_it() -> None:
    for path in REFERENCE.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert text.startswith('"""'), path.name
        assert "Run it with" in text.split('"""')[1], path.name
    assert {p.stem for p in REFERENCE.glob("*.py")} == {
        *SCRIPTS,
        "fastapi_basic",
        "fastapi_best_practices",
    }


@pytest.mark.parametrize("name", SCRIPTS)
def test_script_runs_cleanly(name: str, outputs: dict[str, tuple[int, str, str]]) -> None:
    returncode, _, stderr = outputs[name]
    assert returncode == 0, stderr
    assert stderr == ""


def lines(outputs: dict[str, tuple[int, str, str]], name: str) -> list[str]:
    return outputs[name][1].splitlines()


def test_coroutine_tasks_stream_no_events(outputs: dict[str, tuple[int, str, str]]) -> None:
    # As in the reference: only generator tasks put events on the stream.
    assert lines(outputs, "basic_async") == []
    assert lines(outputs, "multi_step") == []


def test_llm_stream(outputs: dict[str, tuple[int, str, str]]) -> None:
    out = lines(outputs, "llm_stream")
    assert out[0] == "Streaming event: {'type': 'status', 'status': 'thinking'}"
    assert out[-1] == (
        "Streaming event: {'type': 'done', 'full_text': 'Response to: Hello, how are you?'}"
    )
    assert len(out) == 2 + 6 + 1  # statuses, one chunk per word, done


def test_streaming_analysis(outputs: dict[str, tuple[int, str, str]]) -> None:
    out = lines(outputs, "streaming_analysis")
    assert [line.split("'step': ")[-1] for line in out[1:5]] == [
        "'tokenizing'}",
        "'parsing'}",
        "'analyzing'}",
        "'summarizing'}",
    ]
    assert "Analyzed: The quarterly report shows growth in all regions..." in out[-1]


def test_parallel_branches_see_the_parent_and_run_concurrently(
    outputs: dict[str, tuple[int, str, str]],
) -> None:
    out = lines(outputs, "parallel_translations")
    done = [line for line in out if "translation'" in line]
    assert sorted(done) == [
        "Parallel execution event: {'type': 'done', 'french_translation': 'FR: Good morning'}",
        "Parallel execution event: {'type': 'done', 'spanish_translation': 'ES: Good morning'}",
    ]
    # Both branches had started before either ended (one after the other, the first would
    # end before the second started). Which ends first depends on the machine's load.
    started = [n for n, line in enumerate(out) if "'Translating to" in line]
    assert len(started) == 2
    assert max(started) < min(out.index(line) for line in done)


def test_map_runs_one_branch_per_language(outputs: dict[str, tuple[int, str, str]]) -> None:
    out = lines(outputs, "map_languages")
    results = sorted(line for line in out if "'result'" in line)
    assert results == sorted(
        f"Map streaming event: {{'type': 'done', 'result': '[{lang}] Good morning'}}"
        for lang in ("SPANISH", "FRENCH", "GERMAN")
    )
    # All three started before any ended.
    kinds = [
        "status" if "Processing" in line else "done"
        for line in out
        if "Good" in line or "Processing" in line
    ]
    assert kinds == ["status"] * 3 + ["done"] * 3


def test_custom_stream_end_type(outputs: dict[str, tuple[int, str, str]]) -> None:
    assert lines(outputs, "custom_end_type")[-1] == "result = 'all work finished'"


def test_best_practice_stream(outputs: dict[str, tuple[int, str, str]]) -> None:
    assert lines(outputs, "best_practice_stream")[-1] == "final_result = 'part1 part2 part3'"


def test_error_handling(outputs: dict[str, tuple[int, str, str]]) -> None:
    out = lines(outputs, "error_handling")
    assert out[:2] == [
        "Event: {'type': 'status', 'status': 'processing'}",
        "Event: {'type': 'done', 'result': 'HELLO'}",
    ]
    assert out[3] == ("Event: {'type': 'error', 'error': 'Empty input data', 'failed_input': ''}")
    assert out[4].startswith("Failed: run '")
    assert out[4].endswith(
        "failed at step 'safe_operation': CommandCallError: ValueError: Empty input data "
        "(cause: CommandCallError('ValueError: Empty input data'))"
    )


# --- the FastAPI snippets, served by uvicorn ---------------------------------------------


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    uvicorn = [sys.executable, "-m", "uvicorn", "--app-dir", str(REFERENCE)]
    commands = {
        name: [*uvicorn, f"{name}:app", "--log-level", "warning", "--port"]
        for name in ("fastapi_basic", "fastapi_best_practices")
    }
    with running_servers(commands, tmp_path_factory) as urls:
        yield urls


async def post(client: httpx.AsyncClient, path: str, body: dict[str, str]) -> list[Any]:
    async with client.stream("POST", path, json=body) as response:
        assert response.status_code == 200
        return [message["data"] async for message in messages(response)]


@pytest.mark.slow
async def test_basic_fastapi_environment_pattern_answers_each_request(
    apps: dict[str, str],
) -> None:
    # The snippet passes each prompt through os.environ; the reference's concurrent
    # requests answer each other's prompts (seed defect 4). Here each gets its own.
    answers: dict[str, list[Any]] = {}
    async with httpx.AsyncClient(base_url=apps["fastapi_basic"], timeout=30) as client:

        async def ask(prompt: str) -> None:
            answers[prompt] = await post(client, "/chat", {"prompt": prompt})

        async with trio.open_nursery() as nursery:
            for n in range(20):
                nursery.start_soon(ask, f"prompt {n}")
    for prompt, events in answers.items():
        assert events[0] == {"type": "status", "status": "thinking"}
        assert events[-1] == {"type": "done", "full_text": f"Response to: {prompt}"}


@pytest.mark.slow
async def test_best_practices_endpoint_streams_and_reports_errors(apps: dict[str, str]) -> None:
    async with httpx.AsyncClient(base_url=apps["fastapi_best_practices"], timeout=30) as client:
        events = await post(client, "/stream-endpoint", {"input": "hello streaming world"})
        failed = await post(client, "/stream-endpoint", {"input": ""})
    assert [e["text"] for e in events[:-1]] == ["HELLO", "STREAMING", "WORLD"]
    assert events[-1] == {"type": "done", "result": "HELLO STREAMING WORLD"}
    assert len(failed) == 1
    assert failed[0]["type"] == "error"
    assert failed[0]["error"].endswith(
        "failed at step 'upper_case': CommandCallError: ValueError: Empty input"
    )
