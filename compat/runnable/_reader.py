"""``read_run_log()`` with the reference's error for an unknown run id.

Reading is plain file I/O (runnable_trio's reader), usable from asyncio, Trio or no loop.
"""

from __future__ import annotations

import runnable_trio
from runnable_trio import RunConfigurationError, RunLog

from .exceptions import RunLogNotFoundError

__all__ = ["read_run_log"]


def read_run_log(run_id: str, *, configuration_file: str = "") -> RunLog:
    """The record of run ``run_id``: :func:`runnable_trio.read_run_log`.

    Raises:
        RunLogNotFoundError: no such run (also a ``RunConfigurationError``).
        RunConfigurationError: an invalid id, or a file that is not a run log.
    """
    try:
        return runnable_trio.read_run_log(run_id, configuration_file=configuration_file)
    except RunConfigurationError as exc:
        if str(exc).startswith("no run with id"):
            raise RunLogNotFoundError(run_id) from exc
        raise
