"""What every step of a chain pays for, held by counts rather than timings (bench W2)."""

from __future__ import annotations

import dis
import enum
import itertools
from collections.abc import Callable
from typing import Any

import pytest

from runnable_trio import _runner
from runnable_trio._task import AsyncPythonTask

#: The functions every task step runs (the general path, and a Map item's).
_PER_STEP: list[Callable[..., Any]] = [
    _runner.run_step,
    AsyncPythonTask._execute,
    AsyncPythonTask.run_alone,
]


def _enum_members_read_from_their_class(function: Callable[..., Any]) -> list[str]:
    """``Class.MEMBER`` reads of an Enum class in ``function``'s code (Python 3.11: each
    goes through ``EnumType.__getattr__``'s hook, ~70 ns; a module constant costs ~7)."""
    found = []
    namespace = function.__globals__
    instructions = list(dis.get_instructions(function))
    for load, attribute in itertools.pairwise(instructions):
        if load.opname != "LOAD_GLOBAL" or attribute.opname != "LOAD_ATTR":
            continue
        value = namespace.get(load.argval)
        if isinstance(value, enum.EnumType):
            found.append(f"{load.argval}.{attribute.argval} (line {load.positions.lineno})")
    return found


@pytest.mark.parametrize("function", _PER_STEP, ids=lambda f: f.__qualname__)
def test_a_step_reads_no_enum_member_from_its_class(function: Callable[..., Any]) -> None:
    # Only where a step fails, is retried or is resumed may it (off the per-step cost).
    allowed = {
        "Status.FAIL",
        "Status.PROCESSING",
        "Lifecycle.STEP_FAILED",
        "Lifecycle.STEP_RETRYING",
    }
    found = [
        read
        for read in _enum_members_read_from_their_class(function)
        if read.split(" ")[0] not in allowed
    ]
    assert found == []
