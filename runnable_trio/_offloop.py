"""Blocking record work (files, ``git``) off the event loop, yet deterministic under a MockClock.

Run logs, journals, event logs, catalog copies and the code-identity probe block, so they run
in worker threads (``trio.to_thread.run_sync``). But a Trio run whose tasks all wait for a
thread looks idle, and an autojumping ``trio.testing.MockClock`` then jumps virtual time to
the next deadline: a test's ``fail_after(5)`` would expire while a run log is being written.
Our users' test suites rely on virtual time being exact (``runnable_trio.testing`` promises
determinism under a MockClock), so under a ``MockClock`` this work runs inline instead: it is
small, and a test is better served by exact timing than by a free event loop.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TypeVar, TypeVarTuple, Unpack

import trio

__all__ = ["on_mock_clock", "run_blocking", "write_all"]

_T = TypeVar("_T")
_Ts = TypeVarTuple("_Ts")


def on_mock_clock() -> bool:
    """Whether this Trio run keeps virtual time (``trio.testing.MockClock``)."""
    # A MockClock exists only if trio.testing was imported; importing it here would pull
    # pytest into every program that imports this library.
    testing = sys.modules.get("trio.testing")
    return testing is not None and isinstance(trio.lowlevel.current_clock(), testing.MockClock)


async def run_blocking(
    function: Callable[[Unpack[_Ts]], _T],
    *args: *_Ts,
    limiter: trio.CapacityLimiter | None = None,
) -> _T:
    """``function(*args)`` in a worker thread (inline under a ``MockClock``).

    Cancellation: checked before the work starts; once started, the work finishes and its
    result is returned (as ``trio.to_thread.run_sync`` does).
    """
    if on_mock_clock():
        await trio.lowlevel.checkpoint_if_cancelled()
        result = function(*args)
        await trio.lowlevel.cancel_shielded_checkpoint()
        return result
    return await trio.to_thread.run_sync(function, *args, limiter=limiter)


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd`` (``os.write`` may write only part of it)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
