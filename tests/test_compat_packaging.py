"""Installing: what the wheels of compat require, and what an editable install exposes.

The wheels are built by calling compat's build backend directly (hatchling, from the dev
extras), in a subprocess, as a PEP 517 frontend would; no package index is involved.
"""

from __future__ import annotations

import email
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
COMPAT = ROOT / "compat"


def build(hook: str, out: Path) -> list[str]:
    """Build compat with backend ``hook``; the ``Requires-Dist`` lines of its metadata."""
    out.mkdir()
    script = (
        "import sys, compat_build\n"
        f"print(compat_build.{hook}(sys.argv[1]))\n"
    )  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", script, str(out)],
        cwd=COMPAT,
        env={"PYTHONPATH": str(COMPAT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    wheel = out / done.stdout.strip().splitlines()[-1]
    with zipfile.ZipFile(wheel) as archive:
        [metadata] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        message = email.message_from_bytes(archive.read(metadata))
    return message.get_all("Requires-Dist") or []


@pytest.mark.slow
def test_a_regular_wheel_requires_runnable_trio_from_the_repository(tmp_path: Path) -> None:
    requires = build("build_wheel", tmp_path / "wheel")
    assert f"runnable-trio @ {ROOT.as_uri()}" in [r.replace("_", "-") for r in requires]
    assert any(r.startswith("trio-asyncio") for r in requires)


@pytest.mark.slow
def test_an_editable_wheel_requires_runnable_trio_by_name(tmp_path: Path) -> None:
    requires = build("build_editable", tmp_path / "editable")
    assert "runnable-trio" in [r.replace("_", "-") for r in requires]
    assert not [r for r in requires if "@" in r]


@pytest.mark.parametrize("package", ["examples", "bench", "tests"])
def test_the_repository_folders_are_not_importable_outside_it(tmp_path: Path, package: str) -> None:
    # The suite runs on an editable install (`pip install -e . -e ./compat`): from another
    # folder, only runnable_trio and runnable are importable, not the repository's folders.
    script = (
        "import importlib.util, runnable, runnable_trio\n"
        f"print(importlib.util.find_spec({package!r}))\n"
    )  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "None"
