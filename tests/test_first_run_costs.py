"""What a process's first run does once only, done without what costs the most the first time
(a ``weakref.finalize``, an ABC's first check of a type, a ``startswith`` per environment
name, a ``Path`` made for a spare's name)."""

from __future__ import annotations

import gc
import os
import sys
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from runnable_trio import AsyncPythonTask, _definition, _files, _params, _writerlock
from runnable_trio._definition import definition_of, describe_pipeline, hash_definition
from runnable_trio._params import load_parameters


async def _one() -> AsyncIterator[dict[str, Any]]:
    yield {"type": "one"}


def test_a_definition_is_kept_with_no_finalizer_and_goes_with_its_pipeline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_finalizer(*args: object) -> None:
        raise AssertionError("a weakref.finalize made")

    monkeypatch.setattr(weakref, "finalize", no_finalizer)
    pipeline = AsyncPythonTask("t", _one).as_async_pipeline()
    definition, digest = definition_of(pipeline)
    assert definition == describe_pipeline(pipeline)
    assert digest == hash_definition(definition)
    assert definition_of(pipeline)[0] is definition  # once per pipeline object
    key = id(pipeline)
    assert key in _definition._described
    del pipeline
    gc.collect()
    assert key not in _definition._described  # the entry went with its pipeline


class _Counting(type):
    checked: ClassVar[list[object]] = []

    def __instancecheck__(cls, instance: object) -> bool:
        _Counting.checked.append(instance)
        return False


class _Watched(metaclass=_Counting):
    pass


def test_a_function_is_described_without_a_mapping_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An ABC's first check of a type walks its registry (``Mapping``'s, for a function).
    monkeypatch.setattr(_definition, "_MAPPINGS", (dict, _Watched))
    _Counting.checked.clear()
    described = describe_pipeline(AsyncPythonTask("t", _one).as_async_pipeline())
    assert described["steps"][0]["function"] == f"{__name__}._one"
    assert _one not in _Counting.checked


class _Name(bytes):
    """An environment name that counts the ``startswith`` calls made on it."""

    calls = 0

    def startswith(self, *args: Any) -> bool:
        _Name.calls += 1
        return super().startswith(*args)


@pytest.mark.skipif(sys.platform == "win32", reason="os.environ holds str names there")
def test_an_environment_without_parameters_is_not_matched_name_by_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in [k for k in os.environ if k.startswith("RUNNABLE_PRM_")]:
        monkeypatch.delenv(name)
    monkeypatch.setitem(os.environ._data, _Name(b"OTHER_NAME"), b"x")  # type: ignore[attr-defined]
    monkeypatch.setattr(_params, "_seen", ({}, []))  # the process's first run
    _Name.calls = 0
    assert load_parameters(None, "") == {}
    assert _Name.calls == 0
    monkeypatch.setenv("RUNNABLE_PRM_here", "1")  # with one, the names are matched
    assert load_parameters(None, "")["here"] == 1
    assert _Name.calls == 1


@pytest.mark.skipif(sys.platform == "win32", reason="flock")
def test_a_lock_s_spare_is_made_from_its_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    names: list[object] = []
    real = _files.open_new

    def recorded(path: Any, **kwargs: Any) -> int:
        names.append(path)
        return real(path, **kwargs)

    monkeypatch.setattr(_writerlock, "open_new", recorded)
    monkeypatch.setattr(_writerlock, "_locks", OrderedDict())  # this test's own
    spare: list[tuple[str, tuple[int, int], int]] = []
    lock = _writerlock.claim_lock(tmp_path, spare)
    try:
        name, made, fd = spare[0]
        os.close(fd)
        assert names == [name]  # a str: no Path made for it
        assert type(name) is str
        assert name.startswith(f"{lock.token}.")
        assert name.endswith(".spare")
        assert lock.token.startswith(f"{os.getpid()}-")
        assert os.stat(tmp_path / ".writers" / name).st_ino == made[0]
    finally:
        lock.release()
