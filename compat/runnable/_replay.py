"""``replay()`` from asyncio code: a run's recorded events, read in the loop's Trio guest run.

runnable_trio's :func:`~runnable_trio.replay` reads the event log with Trio (worker threads,
Trio sleeps while it follows a run that is still going), so asyncio code gets it through the
same bridge as a live run: checked at the call, read in the guest run, handed over through a
bounded queue, and cancelled when the consumer leaves.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from runnable_trio import Replay
from runnable_trio import replay as trio_replay

from ._guest import HostStream
from ._pipeline import called_from_trio

__all__ = ["replay"]

#: Recorded events that may wait for the asyncio consumer.
REPLAY_CAPACITY = 256


@contextlib.asynccontextmanager
async def _opened(events: Replay) -> AsyncIterator[Replay]:
    yield events


def replay(
    run_id: str, after: int = 0, *, configuration_file: str = "", poll_interval: float = 0.05
) -> Replay | HostStream:
    """The events of run ``run_id`` numbered after ``after``, from its event log.

    Arguments, return value and errors are those of :func:`runnable_trio.replay`; from asyncio
    code the iterator is a :class:`~runnable._guest.HostStream` (with ``last_seq``).

    Raises:
        RunConfigurationError: at the call, for an invalid id or ``after``, or a run with
            no event log.
        ExecutionFailedError: from the iteration, after the last event, if the run failed.
    """
    events = trio_replay(
        run_id, after, configuration_file=configuration_file, poll_interval=poll_interval
    )
    if called_from_trio():
        return events
    return HostStream(lambda: _opened(events), run_id, REPLAY_CAPACITY, after=after)
