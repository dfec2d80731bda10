"""Attacks on the environment's parameters (``_params._prefixed_names``: the process
environment's names joined with NUL and searched once for ``NUL + RUNNABLE_PRM_``, the scan
cached until the environment changes). Whatever the names, their order and their changes from
one run to the next, the parameters are those a plain scan of ``os.environ`` finds: every name
``RUNNABLE_PRM_<name>`` (case kept in the prefix, the name lowercased), nothing else."""

from __future__ import annotations

import json
import os
import random
from typing import Any

import pytest

from runnable_trio._params import ENV_PREFIX, load_parameters

_NAMES = [
    "RUNNABLE_PRM_a",
    "RUNNABLE_PRM_ab",  # a name with another as its prefix
    "RUNNABLE_PRM_A",  # the same parameter, another case
    "RUNNABLE_PRM_",  # the prefix alone: no name
    "RUNNABLE_PRM",  # shorter than the prefix
    "RUNNABLE_PRM__",
    "RUNNABLE_PRM_RUNNABLE_PRM_x",  # the prefix twice
    "XRUNNABLE_PRM_x",  # the prefix inside a name
    "A_RUNNABLE_PRM_y",
    "runnable_prm_low",  # another case of the prefix: not one
    "RUNNABLE_PRM_caf\u00e9",
    "RUNNABLE_PRM_\udcff",  # not UTF-8 (surrogateescape)
    "PLAIN",
]
_VALUES = ['"s"', "5", "[1, 2]", "RUNNABLE_PRM_v=1", "=RUNNABLE_PRM_", "", "not json", "\u00e9"]


def _scanned(environ: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key in list(environ):
        if key.startswith(ENV_PREFIX) and len(key) > len(ENV_PREFIX):
            raw = environ[key]
            try:
                value = json.loads(raw)
            except ValueError:
                value = raw
            found[key[len(ENV_PREFIX) :].lower()] = value
    return found


def test_the_environments_parameters_are_what_a_scan_finds_whatever_the_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Random environments (names in any order, the prefixed one first or last), each one
    # replaced or changed in place between runs as a process's environment is. Only the
    # mapping os.environ reads is changed (its _data, as putenv leaves it): the process's own
    # environment, which its subprocesses inherit, is left alone.
    chooser = random.Random(15)
    encode, encode_value = os.environ.encodekey, os.environ.encodevalue
    data: dict[Any, Any] = {}
    for round_ in range(300):
        if round_ % 3 == 0:
            names = chooser.sample(_NAMES, chooser.randrange(len(_NAMES) + 1))
            data = {encode(name): encode_value(chooser.choice(_VALUES)) for name in names}
            monkeypatch.setattr(os.environ, "_data", data)  # a process started with these
        else:
            key = encode(chooser.choice(_NAMES))
            if key in data and chooser.random() < 0.5:
                del data[key]
            else:
                data[key] = encode_value(chooser.choice(_VALUES))
        assert load_parameters(None, "") == _scanned(os.environ), sorted(os.environ)


def test_a_parameter_set_after_a_run_with_none_is_seen(monkeypatch: pytest.MonkeyPatch) -> None:
    # The scan is skipped when no name holds the prefix: that answer must not outlive the
    # environment it was for, whether a name is added, or a value changed to look like one.
    for name in [n for n in os.environ if n.startswith(ENV_PREFIX)]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HOLDER", "RUNNABLE_PRM_x=1")
    assert load_parameters(None, "") == {}
    monkeypatch.setenv("HOLDER", "RUNNABLE_PRM_y=2")
    assert load_parameters(None, "") == {}
    monkeypatch.setenv("RUNNABLE_PRM_late", "3")
    assert load_parameters(None, "") == {"late": 3}
    monkeypatch.setenv("RUNNABLE_PRM_late", "4")  # the value read at each run
    assert load_parameters(None, "") == {"late": 4}
    monkeypatch.delenv("RUNNABLE_PRM_late")
    assert load_parameters(None, "") == {}
