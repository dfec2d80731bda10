"""Where blocking record work runs: worker threads, except on a clock that jumps over idle time."""

from __future__ import annotations

import math
import os
import threading
from pathlib import Path

import pytest
import trio
import trio.testing

from runnable_trio._offloop import clock_autojumps, run_blocking, write_all


def _thread_of_call() -> int:
    return threading.get_ident()


async def _where_it_ran() -> str:
    ident = await run_blocking(_thread_of_call)
    return "inline" if ident == threading.get_ident() else "thread"


def test_real_clock_uses_a_worker_thread() -> None:
    async def main() -> tuple[bool, str]:
        return clock_autojumps(), await _where_it_ran()

    assert trio.run(main) == (False, "thread")


def test_mock_clock_without_autojump_uses_a_worker_thread() -> None:
    # Virtual time stands still while a thread works when the clock does not autojump, so
    # there is no reason to block the loop: only the autojumping clock changes the behaviour.
    async def main() -> tuple[bool, str]:
        return clock_autojumps(), await _where_it_ran()

    clock = trio.testing.MockClock()
    assert clock.autojump_threshold == math.inf
    assert trio.run(main, clock=clock) == (False, "thread")


def test_autojumping_clock_runs_the_work_inline() -> None:
    async def main() -> tuple[bool, str]:
        return clock_autojumps(), await _where_it_ran()

    assert trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0)) == (True, "inline")


def test_the_clock_is_asked_at_each_call() -> None:
    clock = trio.testing.MockClock()

    async def main() -> list[str]:
        seen = [await _where_it_ran()]
        clock.autojump_threshold = 0
        seen.append(await _where_it_ran())
        clock.autojump_threshold = math.inf
        seen.append(await _where_it_ran())
        return seen

    assert trio.run(main, clock=clock) == ["thread", "inline", "thread"]


async def test_virtual_deadlines_hold_while_record_work_runs(autojump_clock: object) -> None:
    # With a thread the run would look idle and the clock would jump to the deadline.
    with trio.fail_after(5):
        for _ in range(20):
            await run_blocking(threading.Event().wait, 0.01)
    assert trio.current_time() == 0


async def test_cancelled_before_the_work_starts_it_does_not_run(autojump_clock: object) -> None:
    ran: list[int] = []
    with trio.CancelScope() as scope:
        scope.cancel()
        await run_blocking(ran.append, 1)
    assert scope.cancelled_caught
    assert ran == []


@pytest.mark.parametrize("autojump", [True, False])
def test_errors_reach_the_caller_on_both_paths(autojump: bool) -> None:
    def fail() -> None:
        raise OSError(28, "No space left on device")

    async def main() -> None:
        await run_blocking(fail)

    clock = trio.testing.MockClock(autojump_threshold=0 if autojump else math.inf)
    with pytest.raises(OSError, match="No space left") as caught:
        trio.run(main, clock=clock)
    assert caught.value.errno == 28


def _writes_seen(monkeypatch: pytest.MonkeyPatch, most: int) -> list[int]:
    """Make ``os.write`` (as ``write_all`` calls it) write at most ``most`` bytes a call;
    the sizes it was asked to write."""
    from runnable_trio import _offloop

    asked: list[int] = []
    real_write = os.write

    def write(fd: int, data: bytes | memoryview) -> int:
        asked.append(len(data))
        return real_write(fd, bytes(data[:most]))

    monkeypatch.setattr(_offloop.os, "write", write)
    return asked


def test_a_record_that_fits_is_written_in_one_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = _writes_seen(monkeypatch, most=1 << 20)
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT)
    try:
        write_all(fd, b'{"run": 1}\n')
    finally:
        os.close(fd)
    assert asked == [11]
    assert (tmp_path / "f").read_bytes() == b'{"run": 1}\n'


def test_what_a_partial_write_left_is_written_after_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = _writes_seen(monkeypatch, most=4)
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT)
    try:
        write_all(fd, b"0123456789")
    finally:
        os.close(fd)
    assert asked == [10, 6, 2]
    assert (tmp_path / "f").read_bytes() == b"0123456789"
