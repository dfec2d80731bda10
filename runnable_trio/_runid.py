"""Run ids: generated unique per run, or supplied and validated.

A run id names files (``.run_log_store/<run_id>.json``, ``.catalog/<run_id>/``), so a supplied
one may hold only letters, digits, ``-``, ``_``, ``.`` and ``:`` (the reference's documented
``f"req-{datetime.now().isoformat()}"`` pattern), never ``..``, at most 128 characters.
"""

from __future__ import annotations

import itertools
import os
import re
import time

from ._errors import RunConfigurationError

__all__ = ["new_run_id", "validate_run_id"]

_VALID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_counter = itertools.count(1)
_second: tuple[int, str] = (-1, "")


def new_run_id() -> str:
    """A fresh id: UTC time, random bits and a per-process counter (unique even in one ms)."""
    global _second
    seconds, micro = divmod(time.time_ns() // 1000, 1_000_000)
    second = _second  # read once: another thread may move it on meanwhile
    if second[0] != seconds:  # the date and time to the second, formatted once a second
        second = _second = (seconds, time.strftime("%Y%m%d-%H%M%S", time.gmtime(seconds)))
    # os.urandom, as secrets.token_hex draws it, without its two Python calls.
    return f"{second[1]}-{micro:06}-{os.urandom(3).hex()}{next(_counter):x}"


def validate_run_id(run_id: object) -> str:
    """Return ``run_id`` if it can name a run, else raise ``RunConfigurationError``."""
    if not isinstance(run_id, str) or not _VALID.fullmatch(run_id) or ".." in run_id:
        raise RunConfigurationError(
            "run_id must be 1-128 letters, digits, '-', '_', '.' or ':', start with a letter "
            f"or digit, and not contain '..' (got {run_id!r})"
        )
    return run_id
