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

__all__ = ["claim_new", "new_run_id", "validate_run_id"]

_VALID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_counter = itertools.count(1)
_second: tuple[int, str] = (-1, "")
#: Ids made here that no run has claimed yet (the most recent few; oldest first).
_unclaimed: dict[str, bool] = {}
_UNCLAIMED_KEPT = 256


def new_run_id() -> str:
    """A fresh id: UTC time, random bits and a per-process counter (unique even in one ms)."""
    global _second
    seconds, micro = divmod(time.time_ns() // 1000, 1_000_000)
    second = _second  # read once: another thread may move it on meanwhile
    if second[0] != seconds:  # the date and time to the second, formatted once a second
        second = _second = (seconds, time.strftime("%Y%m%d-%H%M%S", time.gmtime(seconds)))
    # os.urandom, as secrets.token_hex draws it, without its two Python calls.
    run_id = f"{second[1]}-{micro:06}-{os.urandom(3).hex()}{next(_counter):x}"
    if len(_unclaimed) >= _UNCLAIMED_KEPT:
        _unclaimed.pop(next(iter(_unclaimed), ""), None)  # never claimed: a run never started
    _unclaimed[run_id] = True
    return run_id


def claim_new(run_id: str) -> bool:
    """Whether ``run_id`` was made by :func:`new_run_id` in this process and is claimed now
    for the first time (by the run starting under it: a store creating its record).

    Such an id is unique: no run has ended under it, so a store need not look for one.
    Every later claim (the same id given again as ``run_id``), and the claim of an id made
    so long ago that it was forgotten, is not new.
    """
    return _unclaimed.pop(run_id, False)


def validate_run_id(run_id: object) -> str:
    """Return ``run_id`` if it can name a run, else raise ``RunConfigurationError``."""
    if not isinstance(run_id, str) or not _VALID.fullmatch(run_id) or ".." in run_id:
        raise RunConfigurationError(
            "run_id must be 1-128 letters, digits, '-', '_', '.' or ':', start with a letter "
            f"or digit, and not contain '..' (got {run_id!r})"
        )
    return run_id
