"""Every public way to start a run takes the same keywords (``RUN_KEYWORDS``/``RETRY_KEYWORDS``).

A keyword added to one surface and not to the others, or renamed on one, fails here; so does
``RunOptions`` growing a field no surface takes.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import attrs
import pytest
import runnable

import runnable_trio
from runnable_trio import RunConfigurationError
from runnable_trio.hosting import RETRY_KEYWORDS, RUN_KEYWORDS, RunOptions

RUNS: dict[str, Callable[..., Any]] = {
    "runnable_trio.AsyncPipeline.execute_streaming": runnable_trio.AsyncPipeline.execute_streaming,
    "runnable_trio.AsyncPipeline.stream": runnable_trio.AsyncPipeline.stream,
    "runnable.AsyncPipeline.execute_streaming": runnable.AsyncPipeline.execute_streaming,
    "runnable.AsyncPipeline.stream": runnable.AsyncPipeline.stream,
}
RETRIES: dict[str, Callable[..., Any]] = {
    "runnable_trio.retry_streaming": runnable_trio.retry_streaming,
    "runnable_trio.retry_stream": runnable_trio.retry_stream,
    "runnable.retry_streaming": runnable.retry_streaming,
    "runnable.retry_stream": runnable.retry_stream,
}


def _keywords(function: Callable[..., Any], leading: int) -> list[str]:
    return list(inspect.signature(function).parameters)[leading:]


@pytest.mark.parametrize("name", sorted(RUNS))
def test_every_run_surface_takes_the_run_keywords(name: str) -> None:
    assert sorted(_keywords(RUNS[name], 1)) == sorted(RUN_KEYWORDS)  # after self


@pytest.mark.parametrize("name", sorted(RETRIES))
def test_every_retry_surface_takes_the_retry_keywords(name: str) -> None:
    assert _keywords(RETRIES[name], 0)[:2] == ["pipeline", "run_id"]
    assert sorted(_keywords(RETRIES[name], 2)) == sorted(RETRY_KEYWORDS)


def test_the_surfaces_spell_their_parameters_the_same_way() -> None:
    """Same default, same annotation, same kind (positional or keyword-only) per keyword
    within each family: the two packages' signatures match each other."""
    for family in (RUNS, RETRIES):
        signatures = {name: inspect.signature(f).parameters for name, f in family.items()}
        pairs = [(n, n.replace("runnable_trio.", "runnable.")) for n in family if "_trio" in n]
        for ours, theirs in pairs:
            for keyword, parameter in signatures[ours].items():
                other = signatures[theirs][keyword]
                assert (parameter.default, parameter.kind) == (other.default, other.kind), (
                    ours,
                    keyword,
                )


def test_run_options_fields_are_the_run_keywords_and_check_takes_them() -> None:
    assert sorted(f.name for f in attrs.fields(RunOptions)) == sorted(RUN_KEYWORDS)
    assert sorted(inspect.signature(RunOptions.check).parameters) == sorted(RUN_KEYWORDS)
    assert set(RETRY_KEYWORDS) <= set(RUN_KEYWORDS)


def test_run_options_are_checked_once_and_frozen() -> None:
    options = RunOptions.check(log_level="info", run_id=None, event_log=None)
    assert (options.log_level, options.run_id, options.buffer_size) == (20, "", 256)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        options.tag = "x"  # type: ignore[misc]
    with pytest.raises(RunConfigurationError, match="buffer_size must be an int >= 1"):
        RunOptions.check(buffer_size=0)
    with pytest.raises(RunConfigurationError, match="log_level must be"):
        RunOptions.check(log_level="LOUD")
    with pytest.raises(RunConfigurationError, match="tag must be a str"):
        RunOptions.check(tag=3)  # type: ignore[arg-type]
    with pytest.raises(RunConfigurationError, match="run_id must be a str"):
        RunOptions.check(run_id=3)  # type: ignore[arg-type]
