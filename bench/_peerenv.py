"""The peers' own virtual environments: ``bench/.venv-<peer>-<version>/`` (gitignored).

LangGraph and pydantic-graph are what a user would pick instead of runnable_trio. Each is
installed by the runner into an environment of its own on first use (``pip install`` of a
pinned version), so their dependencies never mix with this project's, and reused while it
imports the right version. A peer that cannot be installed is skipped with a message.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PEERS", "Peer", "peer_python"]

BENCH = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Peer:
    label: str  # the column's name
    module: str  # the ``workloads/`` module that implements its workloads
    distribution: str  # what pip installs and what the version is read from
    version: str
    extra: tuple[str, ...] = ()  # further requirements of the workloads

    @property
    def venv(self) -> Path:
        return BENCH / f".venv-{self.distribution}-{self.version}"

    @property
    def note(self) -> str:
        return f"{self.distribution} {self.version}"


PEERS = (
    Peer("LangGraph", "peer_langgraph", "langgraph", "1.2.24"),
    # pydantic-graph runs on anyio, so its workloads run under trio.run.
    Peer("pydantic-graph", "peer_pydantic_graph", "pydantic-graph", "2.68.0", ("trio",)),
)


def _installed(python: Path, peer: Peer) -> bool:
    if not python.exists():
        return False
    check = f"import importlib.metadata as m; print(m.version({peer.distribution!r}))"
    found = subprocess.run([python, "-c", check], capture_output=True, text=True, check=False)
    return found.returncode == 0 and found.stdout.split()[-1:] == [peer.version]


def peer_python(peer: Peer, log: Callable[[str], object] = print) -> tuple[Path | None, str]:
    """The peer environment's interpreter, creating it if needed.

    Returns:
        The interpreter's path (None if the peer cannot be installed) and a message saying
        what happened, for the report.
    """
    python = peer.venv / "bin" / "python"
    if _installed(python, peer):
        return python, f"{peer.note} from {peer.venv.name}/"
    log(f"installing {peer.distribution}=={peer.version} into {peer.venv} ...")
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(peer.venv)],
        [python, "-m", "pip", "install", "-q", f"{peer.distribution}=={peer.version}", *peer.extra],
    ]
    for command in steps:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines()
            tail = [line for line in lines if not line.startswith("WARNING")][-1:] or ["no output"]
            failed = " ".join(map(str, command[:4]))
            return None, f"{peer.label} skipped: {failed} failed: {tail[0]}"
    if not _installed(python, peer):
        return None, f"{peer.label} skipped: {peer.distribution}=={peer.version} did not import"
    return python, f"{peer.note} installed into {peer.venv.name}/"
