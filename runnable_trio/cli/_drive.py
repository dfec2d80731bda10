"""Driving one run (``run`` and ``retry``) to its end, showing it, and its exit status.

The run is consumed in ``trio.run``; Ctrl-C (SIGINT) is taken by a signal receiver rather than
as ``KeyboardInterrupt``, so it cancels the run like any cancellation: the run ends
``CANCELLED`` in its record, and the command exits 130.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from typing import IO, Any

import trio

from .._errors import ExecutionFailedError
from .._pipeline import AsyncPipeline
from .._runlog import Status
from .._stream import StreamingRun
from ._text import duration, event_json, lifecycle_line

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "drive"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 0, 1, 2, 130, 141


def drive(
    make_run: Callable[[], StreamingRun],
    pipeline: AsyncPipeline,
    mode: str,
    out: IO[str] | None = None,
    err: IO[str] | None = None,
) -> int:
    """Run to the end; ``mode`` is ``live``, ``plain``, ``jsonl`` or ``none``. Exit status."""
    return trio.run(
        _drive, make_run, pipeline, mode, out or sys.stdout, err or sys.stderr,
        restrict_keyboard_interrupt_to_checkpoints=True,
    )  # fmt: skip


async def _drive(
    make_run: Callable[[], StreamingRun],
    pipeline: AsyncPipeline,
    mode: str,
    out: IO[str],
    err: IO[str],
) -> int:
    run = make_run()
    on_event = _consumer(mode, out)
    view = None
    if mode == "live":
        from rich.console import Console

        from ._live import LiveView

        view = LiveView(Console(file=out), run.run_log, pipeline)
        on_event = view.event
    interrupted = broken = False
    failure: ExecutionFailedError | None = None
    work = trio.CancelScope()
    with trio.open_signal_receiver(signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                nonlocal interrupted
                async for _ in signals:
                    interrupted = True
                    work.cancel()

            nursery.start_soon(watch)
            if view is not None:
                view.start()
                nursery.start_soon(view.publish)
            try:
                with work:
                    try:
                        async for event in run:
                            on_event(event)
                    except ExecutionFailedError as exc:
                        failure = exc
                    except BrokenPipeError:
                        # The reader of our output left (``| head``): the run is cancelled
                        # on the way out, as for Ctrl-C.
                        broken = True
            finally:
                await run.aclose()
                if view is not None:
                    view.stop()
                nursery.cancel_scope.cancel()
    record = run.run_log
    if broken:
        os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())  # no error at exit's flush
        return EXIT_BROKEN_PIPE
    took = "-"
    if record.ended_at is not None:
        took = duration((record.ended_at - record.started_at).total_seconds())
    if mode == "plain":
        print(f"run {run.run_id}: {record.status.value} in {took}", file=out, flush=True)
    if interrupted or record.status is Status.CANCELLED:
        print(f"run {run.run_id} interrupted: its record says {record.status.value}", file=err)
        return EXIT_INTERRUPTED
    if failure is not None:
        print(f"error: {failure}", file=err)
        if failure.step:
            print(f"failing step: {failure.step}", file=err)
        return EXIT_FAILED
    return EXIT_OK


def _consumer(mode: str, out: IO[str]) -> Callable[[dict[str, Any]], None]:
    if mode == "jsonl":

        def jsonl(event: dict[str, Any]) -> None:
            out.write(event_json(event) + "\n")
            out.flush()

        return jsonl
    if mode == "plain":

        def plain(event: dict[str, Any]) -> None:
            line = lifecycle_line(event)
            if line is not None:
                out.write(line + "\n")
                out.flush()

        return plain
    return lambda event: None
