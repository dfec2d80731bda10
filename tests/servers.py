"""Example servers as real processes on 127.0.0.1, and reading their SSE bodies with httpx."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

#: Seconds a server may take to listen: generous, a loaded machine starts Python slowly.
LISTEN_PATIENCE = 120


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + LISTEN_PATIENCE
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited: {log.read_text()}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(
        f"nothing listens on port {port} after {LISTEN_PATIENCE} s: {log.read_text()}"
    )


@contextlib.contextmanager
def running_servers(
    commands: dict[str, list[str]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """Start each command (completed with a free port) in a folder of its own, all at once.

    Yields each server's base URL; stops them (SIGTERM, then SIGKILL after 10 s) at the end.
    """
    started: dict[str, tuple[int, subprocess.Popen[bytes], Path]] = {}
    try:
        for name, command in commands.items():
            port = free_port()
            folder = tmp_path_factory.mktemp(name)
            log = folder / "server.log"
            with log.open("wb") as output:  # the child keeps its own copy of the descriptor
                process = subprocess.Popen(
                    [*command, str(port)], cwd=folder, stdout=output, stderr=subprocess.STDOUT
                )
            started[name] = port, process, log
        for port, process, log in started.values():
            wait_until_listening(port, process, log)
        yield {name: f"http://127.0.0.1:{port}" for name, (port, _, _) in started.items()}
    finally:
        for _, process, _ in started.values():
            process.terminate()
        for _, process, _ in started.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def messages(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """The SSE messages of a response body: their fields, ``data`` decoded."""
    fields: dict[str, Any] = {}
    async for line in response.aiter_lines():
        if not line:
            if fields:
                yield fields
                fields = {}
            continue
        name, _, value = line.partition(": ")
        fields[name] = json.loads(value) if name == "data" else value
