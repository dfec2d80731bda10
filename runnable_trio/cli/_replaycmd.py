"""``replay``: a run's recorded events as JSON lines, from its event log.

Without ``--follow`` it prints what the log holds now and stops; with it, it waits for the
events of a run still going (``runnable_trio.replay``) until the run ends.
"""

from __future__ import annotations

import signal
import sys

import trio

from .._config import load_configuration
from .._errors import ExecutionFailedError, RunConfigurationError
from .._eventlog import EventRecord, decode_line, events_path
from .._replay import replay
from ._drive import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from ._stores import load_run, open_store
from ._text import event_json

__all__ = ["replay_command"]


def replay_command(config: str, run_id: str, after: int, follow: bool) -> int:
    load_run(open_store(config), run_id)  # a clear error for an unknown run
    if follow:
        return trio.run(_follow, config, run_id, after)
    folder = load_configuration(config).run_log_store.folder
    path = events_path(folder, run_id)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise RunConfigurationError(
            f"run {run_id!r} has no event log at {str(path)!r} (run it with event_log: true "
            "in the configuration)"
        ) from None
    lines = data.split(b"\n")
    lines.pop()  # the last piece has no newline yet (or is empty)
    out = sys.stdout
    for line in lines:
        if not line:
            continue
        record = decode_line(line)
        if isinstance(record, EventRecord) and record.seq > after:
            out.write(event_json(record.event) + "\n")
    out.flush()
    return EXIT_OK


async def _follow(config: str, run_id: str, after: int) -> int:
    events = replay(run_id, after, configuration_file=config)
    with trio.open_signal_receiver(signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            interrupted = False

            async def watch() -> None:
                nonlocal interrupted
                async for _ in signals:
                    interrupted = True
                    nursery.cancel_scope.cancel()

            nursery.start_soon(watch)
            try:
                async for event in events:
                    sys.stdout.write(event_json(event) + "\n")
                    sys.stdout.flush()
            except ExecutionFailedError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return EXIT_FAILED
            finally:
                nursery.cancel_scope.cancel()
    return EXIT_INTERRUPTED if interrupted else EXIT_OK
