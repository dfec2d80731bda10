"""The reference's own virtual environment: ``bench/.venv-runnable-0.50.0`` (gitignored).

Created on first use with ``pip install runnable==0.50.0``; reused while it imports the
right version. The reference takes the import name ``runnable``, as does our ``compat/``
layer, so it can never share an environment with this project.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

__all__ = ["REFERENCE_VERSION", "reference_python"]

REFERENCE_VERSION = "0.50.0"
VENV = Path(__file__).resolve().parent / f".venv-runnable-{REFERENCE_VERSION}"

_CHECK = "import importlib.metadata as m, runnable; print(m.version('runnable'))"


def _installed(python: Path) -> bool:
    if not python.exists():
        return False
    found = subprocess.run([python, "-c", _CHECK], capture_output=True, text=True, check=False)
    lines = found.stdout.split()  # importing runnable prints a greeting first
    return found.returncode == 0 and lines[-1:] == [REFERENCE_VERSION]


def reference_python(log: Callable[[str], object] = print) -> tuple[Path | None, str]:
    """The reference environment's interpreter, creating it if needed.

    Returns:
        The interpreter's path (None if the reference cannot be installed) and a message
        saying what happened, for the report.
    """
    python = VENV / "bin" / "python"
    if _installed(python):
        return python, f"runnable {REFERENCE_VERSION} from {VENV.name}/"
    log(f"installing runnable=={REFERENCE_VERSION} into {VENV} ...")
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(VENV)],
        [python, "-m", "pip", "install", "-q", f"runnable=={REFERENCE_VERSION}"],
    ]
    for command in steps:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            return None, f"reference skipped: {' '.join(map(str, command[:4]))} failed: {tail[0]}"
    if not _installed(python):
        return None, f"reference skipped: runnable=={REFERENCE_VERSION} did not import"
    return python, f"runnable {REFERENCE_VERSION} installed into {VENV.name}/"
