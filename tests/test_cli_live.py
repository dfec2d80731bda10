"""The live view of ``run`` on a real pseudo-terminal (tmux), read off the screen."""

from __future__ import annotations

import shlex
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from runnable_trio import read_run_log

from .cli_support import TIMEOUT, require_tool, wait_for, write_targets

# Each test starts several interpreters: on a loaded machine that takes a while.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


class Screen:
    """One tmux server of our own (its own socket), one window running a command."""

    def __init__(self, tmux: str, folder: Path) -> None:
        self.tmux = tmux
        self.socket = f"runnable-trio-test-{uuid.uuid4().hex[:8]}"
        self.folder = folder

    def _tmux(self, *args: str) -> str:
        done = subprocess.run([self.tmux, "-L", self.socket, *args], capture_output=True,
                              text=True, timeout=TIMEOUT, check=True)  # fmt: skip
        return done.stdout

    def start(self, *args: str) -> None:
        command = " ".join(shlex.quote(a) for a in [sys.executable, "-m", "runnable_trio", *args])
        shell = f"cd {shlex.quote(str(self.folder))} && {command}; echo exit=$?; sleep 600"
        self._tmux("new-session", "-d", "-x", "110", "-y", "40", shell)

    def text(self) -> str:
        return self._tmux("capture-pane", "-p")

    def wait(self, *texts: str) -> str:
        def shown() -> str:
            screen = self.text()
            return screen if all(t in screen for t in texts) else ""

        return str(wait_for(shown, f"{texts} on the screen"))

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", *keys)

    def close(self) -> None:
        subprocess.run([self.tmux, "-L", self.socket, "kill-server"], capture_output=True,
                       timeout=TIMEOUT)  # fmt: skip


@pytest.fixture
def screen(tmp_path: Path) -> Iterator[Screen]:
    write_targets(tmp_path)
    found = Screen(require_tool("tmux"), tmp_path)
    try:
        yield found
    finally:
        found.close()


def test_live_view_shows_the_tree_while_the_run_goes(screen: Screen, tmp_path: Path) -> None:
    screen.start("run", "targets:gated", "-p", "gate=open-me", "--run-id", "live1")
    going = screen.wait("● gate", "· after")
    lines = going.splitlines()
    assert lines[0].startswith("● run live1  gated  PROCESSING")
    assert "newest events" in going
    assert 'gate: {"type": "waiting", "for": "open-me"}' in going
    assert "\x1b" not in going
    (tmp_path / "open-me").touch()
    done = screen.wait("exit=0")
    assert "✓ run live1  gated  SUCCESS" in done
    assert "✓ gate  task" in done
    assert "✓ after  task" in done
    # Redrawn in place: the header is on the screen once, the old frames are gone.
    assert done.count("run live1") == 1
    assert "PROCESSING" not in done


def test_live_view_counts_map_branches(screen: Screen) -> None:
    screen.start("run", "targets:nested", "-p", "items=[1, 2, 3]", "--run-id", "m")
    done = screen.wait("exit=0")
    assert "✓ each  map  3/3 done" in done
    assert "✓ both  parallel  2/2 done" in done
    assert "✗ risky  task" in done
    assert "✓ [%on_failure]" in done


def test_ctrl_c_in_the_live_view(screen: Screen, tmp_path: Path) -> None:
    screen.start("run", "targets:gated", "-p", "gate=never", "--run-id", "live2")
    screen.wait("● gate")
    screen.keys("C-c")
    done = screen.wait("exit=130")
    assert "⊘ run live2  gated  CANCELLED" in done
    assert read_run_log("live2").status == "CANCELLED"
