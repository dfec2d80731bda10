"""Parameters: sources, precedence, environment decoding, read once at the call."""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path
from typing import Any

import pytest

from runnable_trio import AsyncPythonTask, RunConfigurationError
from runnable_trio._errors import ParameterError
from runnable_trio._params import Binder, load_parameters


def test_precedence_parameters_over_environment_over_file(tmp_path: Path) -> None:
    file = tmp_path / "params.yaml"
    file.write_text("a: from-file\nb: from-file\nc: from-file\n")
    environ = {"RUNNABLE_PRM_b": '"from-env"', "RUNNABLE_PRM_c": '"from-env"'}
    values = load_parameters({"c": "from-parameters"}, file, environ)
    assert values == {"a": "from-file", "b": "from-env", "c": "from-parameters"}


def test_environment_values_are_json_decoded_or_kept_literal() -> None:
    environ = {
        "RUNNABLE_PRM_n": "5",
        "RUNNABLE_PRM_items": "[1, 2]",
        "RUNNABLE_PRM_obj": '{"k": true}',
        "RUNNABLE_PRM_prompt": "Hello, how are you?",
        "RUNNABLE_PRM_": "ignored: no name",
        "OTHER": "ignored",
    }
    assert load_parameters(None, "", environ) == {
        "n": 5,
        "items": [1, 2],
        "obj": {"k": True},
        "prompt": "Hello, how are you?",
    }


def test_environment_names_are_lower_cased() -> None:
    assert load_parameters(None, "", {"RUNNABLE_PRM_Prompt": "x"}) == {"prompt": "x"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("- a\n- b\n", "must hold a mapping of names to values (got list)"),
        ("a: [unclosed\n", "is not YAML"),
        ("1: x\n", "parameter names must be non-empty str (got 1)"),
    ],
)
def test_bad_parameters_file(tmp_path: Path, content: str, message: str) -> None:
    file = tmp_path / "p.yaml"
    file.write_text(content)
    with pytest.raises(RunConfigurationError, match=re.escape(message)):
        load_parameters(None, file, {})


def test_missing_parameters_file(tmp_path: Path) -> None:
    with pytest.raises(RunConfigurationError, match="cannot read parameters_file"):
        load_parameters(None, tmp_path / "nope.yaml", {})


def test_empty_parameters_file_is_no_parameters(tmp_path: Path) -> None:
    file = tmp_path / "p.yaml"
    file.write_text("")
    assert load_parameters(None, file, {}) == {}


async def test_environment_is_read_at_the_call_not_later(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []

    async def use(prompt: str) -> None:
        seen.append(prompt)

    pipeline = AsyncPythonTask("use", use).as_async_pipeline()
    monkeypatch.setenv("RUNNABLE_PRM_prompt", "first request")
    run = pipeline.execute_streaming()
    monkeypatch.setenv("RUNNABLE_PRM_prompt", "second request")  # another request's value
    async for _ in run:
        pass
    assert seen == ["first request"]
    assert run.run_log.parameters_in == {"prompt": "first request"}


async def test_runs_never_write_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    async def produce() -> str:
        return "value"

    before = dict(os.environ)
    pipeline = AsyncPythonTask("p", produce, returns=["secret"]).as_async_pipeline()
    async for _ in pipeline.execute_streaming(parameters={"x": 1}):
        pass
    assert dict(os.environ) == before


async def test_parameters_file_through_the_pipeline(tmp_path: Path) -> None:
    file = tmp_path / "p.yaml"
    file.write_text("text: hello\n")
    seen: list[str] = []

    async def use(text: str) -> None:
        seen.append(text)

    async for _ in (
        AsyncPythonTask("use", use).as_async_pipeline().execute_streaming(parameters_file=str(file))
    ):
        pass
    assert seen == ["hello"]


async def test_parameters_given_are_not_mutated() -> None:
    async def produce() -> int:
        return 2

    given = {"x": 1}
    pipeline = AsyncPythonTask("p", produce, returns=["x"]).as_async_pipeline()
    run = pipeline.execute_streaming(parameters=given)
    async for _ in run:
        pass
    assert given == {"x": 1}
    assert run.run_log.parameters_out == {"x": 2}


async def named() -> None:
    pass


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_a_parameters_file_that_is_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "params.fifo"
    os.mkfifo(fifo)
    with pytest.raises(RunConfigurationError) as caught:
        AsyncPythonTask("t", named).as_async_pipeline().execute_streaming(parameters_file=str(fifo))
    assert str(caught.value) == f"parameters_file {str(fifo)!r} must be a regular file (got a FIFO)"


def test_a_parameters_file_that_is_a_device_or_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RunConfigurationError, match=r"must be a regular file \(got a folder\)"):
        load_parameters(None, tmp_path, {})
    if Path("/dev/zero").exists():
        with pytest.raises(
            RunConfigurationError, match=r"must be a regular file \(got a character device\)"
        ):
            load_parameters(None, "/dev/zero", {})


def test_a_parameters_file_that_is_not_a_path() -> None:
    with pytest.raises(RunConfigurationError, match=r"'parameters_file' must be a path .*got 3"):
        load_parameters(None, 3, {})  # type: ignore[arg-type]


async def test_each_run_sees_the_environment_as_it_is_at_its_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[dict[str, Any]] = []

    async def use(**values: Any) -> None:
        seen.append(values)

    pipeline = AsyncPythonTask("use", use).as_async_pipeline()
    monkeypatch.setenv("RUNNABLE_PRM_kept", "1")
    monkeypatch.setenv("RUNNABLE_PRM_changed", '"before"')
    monkeypatch.setenv("RUNNABLE_PRM_removed", "true")
    async for _ in pipeline.execute_streaming():
        pass
    monkeypatch.setenv("RUNNABLE_PRM_changed", '"after"')
    monkeypatch.delenv("RUNNABLE_PRM_removed")
    monkeypatch.setenv("RUNNABLE_PRM_added", "[2]")
    async for _ in pipeline.execute_streaming():
        pass
    assert seen == [
        {"kept": 1, "changed": "before", "removed": True},
        {"kept": 1, "changed": "after", "added": [2]},
    ]


def test_the_environment_is_read_in_one_pass() -> None:
    class Watched(dict[str, str]):
        passes = 0

        def __iter__(self) -> Any:
            Watched.passes += 1
            return super().__iter__()

    environ = Watched({f"RUNNABLE_PRM_p{i}": str(i) for i in range(20)}, OTHER="x")
    assert load_parameters(None, "", environ) == {f"p{i}": i for i in range(20)}
    assert Watched.passes == 1


def test_an_unchanged_process_environment_is_not_decoded_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    decoded: list[str] = []
    decodekey = os.environ.decodekey
    this_thread = threading.get_ident()

    def counting(key: Any) -> str:
        name = decodekey(key)
        if threading.get_ident() == this_thread:  # not a git probe's thread copying it
            decoded.append(name)
        return name

    monkeypatch.setattr(os.environ, "decodekey", counting)
    monkeypatch.setenv("RUNNABLE_PRM_seen", "1")
    assert load_parameters(None, "")["seen"] == 1
    assert decoded == ["RUNNABLE_PRM_seen"]  # only the parameters' names, once
    assert load_parameters(None, "")["seen"] == 1
    assert decoded == ["RUNNABLE_PRM_seen"]  # unchanged: not scanned again
    monkeypatch.setenv("RUNNABLE_PRM_seen", "2")  # a value changed: read again
    monkeypatch.setenv("UNRELATED", "x")
    assert load_parameters(None, "")["seen"] == 2
    monkeypatch.delenv("RUNNABLE_PRM_seen")
    assert "seen" not in load_parameters(None, "")


def _binder_cases() -> list[Any]:
    def plain(item: int, other: str) -> None: ...

    def optional(item: int, other: str = "x") -> None: ...

    def converted(item: float, other: str) -> None: ...

    def rest(item: int, **more: Any) -> None: ...

    def unnamed(other: str) -> None: ...

    def missing(item: int, nowhere: str) -> None: ...

    return [plain, optional, converted, rest, unnamed, missing]


@pytest.mark.parametrize("function", _binder_cases())
@pytest.mark.parametrize("parent", [{"other": "o"}, {}, {"item": 9, "other": "o"}])
def test_an_items_arguments_are_bound_as_over_the_view_of_parent_and_item(
    function: Any, parent: dict[str, Any]
) -> None:
    from runnable_trio._scope import _WithItem

    binder = Binder.of(function)
    view = _WithItem(parent, "item", 3)
    try:
        expected: Any = binder.bind(view, "step")
    except ParameterError as exc:
        expected = str(exc)
    found = binder.bind_item(parent, "item", 3, "step")
    if found is None:  # the caller binds over the view then
        assert isinstance(expected, str) or binder.takes_rest
    else:
        assert found == expected


async def test_a_map_items_arguments_are_bound_without_a_view(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from runnable_trio import AsyncPipeline, AsyncPythonTask, Map, _scope
    from tests.helpers import run

    views = 0
    real = _scope._WithItem

    def counted(*args: Any) -> Any:
        nonlocal views
        views += 1
        return real(*args)

    monkeypatch.setattr(_scope, "_WithItem", counted)
    seen: list[tuple[int, str]] = []

    async def work(item: int, other: str) -> None:
        seen.append((item, other))

    each = Map("each", "items", "item", AsyncPythonTask("work", work).as_async_pipeline())
    await run(AsyncPipeline([each]), parameters={"items": [1, 2], "other": "o"})
    assert sorted(seen) == [(1, "o"), (2, "o")]
    assert views == 0
