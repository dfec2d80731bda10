"""Helpers for the command-line tests: commands as real subprocesses, targets as files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

TIMEOUT = 120  # seconds: generous, a loaded machine must not fail a test

# A pipeline module the tests run. ``gate`` waits until the file named by the ``gate``
# parameter exists, so a test can look at a run while it is going, for as long as it needs.
TARGETS = """
from pathlib import Path

import trio

from runnable_trio import (
    AsyncPipeline, AsyncPythonTask, Conditional, Loop, Map, Parallel, Retry, Stub,
)


async def hello(name: str = "world"):
    yield {"type": "token", "text": "hello"}
    yield {"type": "token", "text": name}
    yield {"type": "done", "greeting": f"hello {name}"}


async def gate(gate: str):
    yield {"type": "waiting", "for": gate}
    while not Path(gate).exists():
        await trio.sleep(0.05)
    yield {"type": "done", "opened": True}


async def forever():
    i = 0
    while True:
        i += 1
        yield {"type": "tick", "i": i}
        await trio.sleep(0.01)


endless = AsyncPipeline([AsyncPythonTask("forever", forever)], name="endless")


async def after(opened: bool) -> str:
    return "after"


async def boom(x: int = 0) -> int:
    if not Path("fixed").exists():
        raise ValueError(f"boom {x}")
    return x + 1


async def double(v: int) -> int:
    return 2 * v


async def pick(doubled: list) -> str:
    return "big" if sum(doubled) > 5 else "small"


async def cut(i: int) -> tuple[int, bool]:
    return i, i >= 1


greet = AsyncPipeline([AsyncPythonTask("greet", hello, returns=["greeting"])], name="greet")

gated = AsyncPipeline(
    [
        AsyncPythonTask("gate", gate, returns=["opened"]),
        AsyncPythonTask("after", after, returns=["result"]),
    ],
    name="gated",
)

failing = AsyncPipeline(
    [
        AsyncPythonTask("first", double, returns=["doubled_one"]),
        AsyncPythonTask("explode", boom, returns=["y"]),
    ],
    name="failing",
)


def made_failing() -> AsyncPipeline:
    return AsyncPipeline([AsyncPythonTask("explode", boom, returns=["y"])], name="made")


def nested() -> AsyncPipeline:
    return AsyncPipeline(
        [
            Map("each", "items", "v",
                AsyncPythonTask("double", double, returns=["doubled"]).as_async_pipeline()),
            Parallel("both", {
                "left": AsyncPythonTask("pick", pick, returns=["size"]).as_async_pipeline(),
                "right": Stub("noop").as_async_pipeline(),
            }),
            Conditional("route", "size", {
                "big": Loop("refine",
                            AsyncPythonTask("cut", cut, returns=["c", "stop"]).as_async_pipeline(),
                            max_iterations=3, break_on="stop", index_as="i").as_async_pipeline(),
                "small": Stub("nothing").as_async_pipeline(),
            }),
            AsyncPythonTask(
                "risky", boom, returns=["y"],
                on_failure=Stub("recover").as_async_pipeline(),
            ),
            Stub("finish", terminate_with_success=True),
        ],
        name="nested",
    )


not_a_pipeline = 42
"""


def write_targets(folder: Path) -> None:
    (folder / "targets.py").write_text(TARGETS, encoding="utf-8")


def cli(
    folder: Path,
    *args: str,
    script: str | None = None,
    check: int | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run one command in ``folder``; ``check``: the exit status it must have."""
    if script is None:
        command = [sys.executable, "-m", "runnable_trio", *args]
    else:
        found = shutil.which(script, path=os.path.dirname(sys.executable)) or shutil.which(script)
        assert found, f"console script {script!r} is not installed"
        command = [found, *args]
    done = subprocess.run(
        command,
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env={**os.environ, "NO_COLOR": "", **(env or {})},
    )
    if check is not None:
        assert done.returncode == check, (done.returncode, done.stdout, done.stderr)
    return done


def wait_for(condition: Any, what: str, timeout: float = TIMEOUT) -> Any:
    """Poll ``condition()`` until it is truthy (a generous deadline, not a timing check)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def require_tool(name: str) -> str:
    """The path of ``name``; skipped where it is missing, but a failure in CI."""
    found = shutil.which(name)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} must be installed in CI (.ci/run installs it)")
        pytest.skip(f"{name} is not installed")
    return found


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip()


def chromium_dom(page: Path, screenshot: Path | None = None) -> str:
    """The DOM of ``page`` after its scripts ran, in headless Chromium (Debian's package)."""
    browser = require_browser()
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--virtual-time-budget=20000", "--window-size=1200,900"]  # fmt: skip
    url = page.absolute().as_uri()
    if screenshot is not None:
        subprocess.run([*flags, f"--screenshot={screenshot}", url], capture_output=True,
                       timeout=TIMEOUT, check=True)  # fmt: skip
    done = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True,
                          timeout=TIMEOUT, check=True)  # fmt: skip
    return done.stdout


def require_browser() -> str:
    for name in ("chromium", "chromium-browser"):
        if shutil.which(name):
            return str(shutil.which(name))
    return require_tool("chromium")


def mermaid_js() -> Path:
    """mermaid's browser bundle from the npm registry (.ci/run installs it in .ci/node)."""
    root = Path(__file__).resolve().parent.parent
    path = Path(os.environ.get("RUNNABLE_TRIO_MERMAID_JS") or
                root / ".ci/node/node_modules/mermaid/dist/mermaid.min.js")  # fmt: skip
    if not path.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"mermaid must be installed in CI at {path} (.ci/run installs it)")
        pytest.skip(f"mermaid is not installed at {path} (npm install --prefix .ci/node mermaid)")
    return path
