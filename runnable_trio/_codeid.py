"""The code identity of a run: git commit and whether the working tree was dirty.

Taken once per process and folder (the reference runs ``git`` three times per step), with one
``git status --porcelain=v2 --branch --untracked-files=no`` run from a worker thread, and reused
by every later run of the process from that folder: the code a process runs is the code it
imported, whatever happens to the working tree afterwards. The run starts at once, and so does
its first event: the probe of a process's first run starts only once the consumer has had the
run's first event (:meth:`Recording.start`, called by the consumer's stream), or when the run
ends without having started it, since starting a thread and ``git`` holds the event loop for a
millisecond or more (most of a first run's time to its first event). It then runs concurrently
with the pipeline; :func:`recording_code_identity` waits for it, if it is still going, before
the run's record is finished (the record is created when the run starts either way, so a crash
leaves one); a cancelled run does not wait (its record then says the identity was not taken).
A folder that is not a git checkout, or a missing ``git``, is recorded as an error in the
identity, never as a failure of the run.
"""

from __future__ import annotations

import contextlib
import functools
import os
import subprocess
import types
from typing import final

import outcome
import trio

from ._offloop import clock_autojumps
from ._runlog import CodeIdentity, RunLog

__all__ = ["Recording", "probe_code_identity", "recording_code_identity"]

_COMMAND = ("git", "status", "--porcelain=v2", "--branch", "--untracked-files=no")
# git with no terminal prompt and no locale surprises; the run's own environment otherwise.
_ENV_OVERRIDES = {"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
_GIT_TIMEOUT = 30.0
# Identities already taken in this process, by folder. A probe that raised is not kept, so a
# later run tries again.
_taken: dict[str, CodeIdentity] = {}


def probe_code_identity(folder: str) -> CodeIdentity:
    """The git commit of ``folder`` and whether its tracked files differ from it (blocking)."""
    try:
        done = subprocess.run(
            _COMMAND,
            cwd=folder,
            capture_output=True,
            check=False,
            timeout=_GIT_TIMEOUT,
            env={**os.environ, **_ENV_OVERRIDES},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return CodeIdentity(error=f"cannot run git: {exc}")
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip().splitlines()
        return CodeIdentity(error=message[0] if message else f"git exited {done.returncode}")
    commit: str | None = None
    dirty = False
    for line in done.stdout.decode(errors="replace").splitlines():
        if line.startswith("# branch.oid "):
            oid = line.removeprefix("# branch.oid ").strip()
            commit = None if oid == "(initial)" else oid
        elif line and not line.startswith("#"):
            dirty = True
    if commit is None:
        return CodeIdentity(dirty=dirty, error="no commit yet")
    return CodeIdentity(commit=commit, dirty=dirty)


class _Probe:
    """One probe of a folder whose identity is not known yet, run in a thread of Trio's
    cache once started; its result awaited later."""

    _result: CodeIdentity  # set when the probe answers (``_done``)

    def __init__(self, folder: str) -> None:
        self._folder = folder
        self.started = False
        self._done = trio.Event()

    def start(self) -> None:
        """Start the probe, if not started yet (it answers at once under an autojump clock)."""
        if self.started:
            return
        self.started = True
        folder = self._folder
        if clock_autojumps():
            # A pending thread would let virtual time jump (see _offloop).
            self._deliver(outcome.capture(probe_code_identity, folder))
            return
        token = trio.lowlevel.current_trio_token()

        def deliver(result: outcome.Outcome[CodeIdentity]) -> None:
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(self._deliver, result)

        trio.lowlevel.start_thread_soon(
            functools.partial(probe_code_identity, folder), deliver, name="runnable_trio git"
        )

    def _deliver(self, result: outcome.Outcome[CodeIdentity]) -> None:
        if isinstance(result, outcome.Error):
            self._result = CodeIdentity(error=f"cannot take the code identity: {result.error!r}")
        else:
            self._result = _taken[self._folder] = result.unwrap()
        self._done.set()

    async def taken(self) -> CodeIdentity:
        """The identity, once the probe has answered.

        Cancellation: shielded; no checkpoint when the probe has answered already.
        """
        self.start()
        if not self._done.is_set():
            # A run that ended by itself has its record finished: git takes milliseconds.
            with trio.CancelScope(shield=True):
                await self._done.wait()
        return self._result

    def result_so_far(self) -> CodeIdentity:
        """The identity if the probe has answered, else an identity saying it was not taken."""
        if self._done.is_set():
            return self._result
        return CodeIdentity(error="not taken: the run was cancelled before git answered")


def recording_code_identity(run_log: RunLog, enabled: bool, folder: str | None = None) -> Recording:
    """Probe the code identity of ``folder`` (the run's working folder, as ``os.getcwd()``
    gives it: read here if not given) into ``run_log.code`` while the ``async with`` block
    runs.

    No nursery: the probe runs in a thread, so the block's exceptions pass through as they
    were raised (a nursery would copy exception groups).

    The probe starts when :meth:`Recording.start` is called (the consumer has the run's first
    event), else once the block ends, after two scheduling rounds that give the consumer the
    run's last events first.

    An identity taken already for the working folder (every run after a process's first
    from that folder) is recorded as it is: no probe is made, no event to set and wait on,
    on the way to every later run's first event.

    Cancellation: no wait for the probe: a cancelled run ends at once, and its record says
    the identity was not taken if ``git`` had not answered yet (a probe's thread that was
    started still finishes, and fills the per-process cache for later runs).
    """
    if not enabled:
        return Recording(run_log, None)
    if folder is None:
        folder = os.getcwd()
    known = _taken.get(folder)
    return Recording(run_log, _Probe(folder) if known is None else known)


@final
class Recording:
    """:func:`recording_code_identity`'s block; a class, as a generator-based context manager
    costs several objects and frames more per run."""

    __slots__ = ("_probe", "_run_log")

    def __init__(self, run_log: RunLog, probe: _Probe | CodeIdentity | None) -> None:
        self._run_log = run_log
        self._probe = probe  # the identity itself if known already; None: not recorded

    def start(self) -> None:
        """Start the probe now if it has not started (the consumer has the first event)."""
        if isinstance(self._probe, _Probe):
            self._probe.start()

    async def __aenter__(self) -> Recording:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: types.TracebackType | None,
    ) -> None:
        probe = self._probe
        if not isinstance(probe, _Probe):
            if probe is not None:
                self._run_log.code = probe  # known already, however the run ended
            return
        if exc is None or isinstance(exc, Exception):
            if not probe.started:
                # A run that streamed its events without its consumer ever waiting: the
                # consumer takes the last ones before the thread and git hold the loop.
                await trio.lowlevel.cancel_shielded_checkpoint()
                await trio.lowlevel.cancel_shielded_checkpoint()
            self._run_log.code = await probe.taken()
        else:
            self._run_log.code = probe.result_so_far()
