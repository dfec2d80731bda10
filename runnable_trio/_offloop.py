"""Blocking record work (files, ``git``) off the event loop, yet deterministic on virtual time.

Run logs, journals, event logs, catalog copies and the code-identity probe block, so they run
in worker threads (``trio.to_thread.run_sync``). But a Trio run whose tasks all wait for a
thread looks idle, and a clock that jumps over idle time (``trio.testing.MockClock`` with a
finite ``autojump_threshold``, as pytest-trio's ``autojump_clock`` and our ``runnable_clock``
fixtures are) then jumps virtual time to the next deadline: a test's ``fail_after(5)`` would
expire while a run log is being written. Our users' test suites rely on virtual time being exact
(``runnable_trio.testing`` promises determinism under a MockClock), so on such a clock, and only
there, this work runs inline instead: it is small, and a test is better served by exact timing
than by a free event loop. Every other clock (the real one, a MockClock that does not autojump,
a user's own ``trio.abc.Clock``) gets the worker threads; this module is the one place that
decides (`clock_autojumps`).
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable
from typing import TypeVar, TypeVarTuple, Unpack

import trio

__all__ = ["clock_autojumps", "run_blocking", "write_all"]

_T = TypeVar("_T")
_Ts = TypeVarTuple("_Ts")


def clock_autojumps() -> bool:
    """Whether this Trio run's clock jumps virtual time when every task is waiting.

    Asked at each call, not once per run: a test may set ``autojump_threshold`` mid-run.
    """
    # A MockClock exists only if trio.testing was imported; importing it here would pull
    # pytest into every program that imports this library.
    testing = sys.modules.get("trio.testing")
    if testing is None:
        return False
    clock = trio.lowlevel.current_clock()
    return isinstance(clock, testing.MockClock) and clock.autojump_threshold != math.inf


async def run_blocking(
    function: Callable[[Unpack[_Ts]], _T],
    *args: *_Ts,
    limiter: trio.CapacityLimiter | None = None,
) -> _T:
    """``function(*args)`` in a worker thread (inline on a clock that autojumps).

    Cancellation: checked before the work starts; once started, the work finishes and its
    result is returned (as ``trio.to_thread.run_sync`` does).
    """
    if clock_autojumps():
        await trio.lowlevel.checkpoint_if_cancelled()
        result = function(*args)
        await trio.lowlevel.cancel_shielded_checkpoint()
        return result
    return await trio.to_thread.run_sync(function, *args, limiter=limiter)


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd`` (``os.write`` may write only part of it)."""
    # One write, as a journal line or a run's first record usually is; a view of what is
    # left only after a partial write (its view and slices cost a line ~1,500 instructions).
    written = os.write(fd, data)
    if written < len(data):
        view = memoryview(data)[written:]
        while view:
            view = view[os.write(fd, view) :]
