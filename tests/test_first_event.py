"""The path from the call to a run's first event: what it must not do again at every run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trio.testing

from runnable_trio import _codeid, _convert
from runnable_trio._convert import read_regular_file
from runnable_trio._runlog import CodeIdentity, RunLog


def test_a_file_is_read_with_text_mode_line_ends(tmp_path: Path) -> None:
    file = tmp_path / "f.yaml"
    file.write_bytes("a: 1\r\nb: é\rc: 3\n".encode())
    assert read_regular_file(file, "parameters_file") == "a: 1\nb: é\nc: 3\n"


def test_a_file_larger_than_one_read_is_read_whole(tmp_path: Path) -> None:
    file = tmp_path / "big.yaml"
    text = "".join(f"k{i}: {i}\n" for i in range(3 * _convert._CHUNK // 8))
    file.write_text(text, encoding="utf-8")
    assert len(text) > 2 * _convert._CHUNK
    assert read_regular_file(file, "configuration_file") == text


def test_a_file_that_is_not_utf8_is_a_configuration_error(tmp_path: Path) -> None:
    from runnable_trio import RunConfigurationError

    file = tmp_path / "latin1.yaml"
    file.write_bytes(b"a: caf\xe9\n")
    with pytest.raises(RunConfigurationError, match=r"cannot read parameters_file .*utf-8"):
        read_regular_file(file, "parameters_file")


async def test_a_known_code_identity_is_recorded_without_a_checkpoint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    known = CodeIdentity(commit="abc", dirty=False)
    monkeypatch.setitem(_codeid._taken, os.getcwd(), known)
    run_log = RunLog("r")
    # The end of a run that streamed its last event must not wait a scheduling round.
    with trio.testing.assert_no_checkpoints():
        async with _codeid.recording_code_identity(run_log, True):
            pass
    assert run_log.code is known


async def test_an_exception_leaves_the_block_as_raised_with_the_identity_recorded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    known = CodeIdentity(commit="abc", dirty=True)
    monkeypatch.setitem(_codeid._taken, os.getcwd(), known)
    run_log = RunLog("r")
    error = ValueError("boom")
    with pytest.raises(ValueError, match="boom") as raised:
        async with _codeid.recording_code_identity(run_log, True):
            raise error
    assert raised.value is error
    assert run_log.code is known
    disabled = RunLog("d")
    async with _codeid.recording_code_identity(disabled, False):
        pass
    assert disabled.code is None
