"""Every Trio example script in examples/ runs to completion (on a virtual clock)."""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path
from types import ModuleType

import pytest
import trio
import trio.testing

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{path.stem}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def trio_scripts() -> list[Path]:
    """Top-level scripts with an ``async def main()`` run by ``trio.run`` (not the servers)."""
    return sorted(
        path
        for path in EXAMPLES.glob("*.py")
        if "trio.run(main)" in path.read_text(encoding="utf-8")
    )


def test_there_are_examples() -> None:
    assert {p.name for p in trio_scripts()} >= {
        "basic_async.py",
        "custom_end_type.py",
        "llm_stream.py",
        "multi_step.py",
    }


@pytest.mark.parametrize("path", trio_scripts(), ids=lambda p: p.name)
def test_example_runs(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    module = load(path)
    assert module.__doc__, f"{path.name} needs a docstring saying what it shows"
    assert inspect.iscoroutinefunction(module.main)
    trio.run(module.main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert capsys.readouterr().out  # every example shows what it streamed
