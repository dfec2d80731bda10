"""Run the benchmarks and print the table: ``python bench/run.py [--quick] [options]``.

Every measurement runs in a fresh process (``_child.py``) in a fresh working folder inside a
throw-away git repository (the reference calls ``git`` per step, as it would in a user's
project). Repetitions are interleaved: each round runs every case's implementations in turn,
rotating their order, so slow drift in the machine's load falls on all of them alike. A
measurement that exceeds its time limit is killed and reported as a timeout.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from _peerenv import PEERS, peer_python
from _plan import Case, Impl, plan
from _refenv import REFERENCE_VERSION, reference_python
from _report import Outcome, render_table, summarise_targets

BENCH = Path(__file__).resolve().parent
CHILD = BENCH / "_child.py"


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    return done.stdout.strip()


class Runner:
    """Runs measurements in fresh processes and keeps their outcomes."""

    def __init__(self, timeout: float, pythons: Mapping[str, Path | None], at: str | None) -> None:
        self.timeout = timeout
        #: The interpreter of each module run outside this environment (the reference, the
        #: peers); None: it could not be installed.
        self.pythons = dict(pythons)
        self.outcomes: dict[tuple[str, str], Outcome] = {}
        self.root = Path(tempfile.mkdtemp(prefix="runnable-bench-"))
        self.env = dict(os.environ)
        if at is not None:
            library = _snapshot(at, self.root / "library")
            self.env["PYTHONPATH"] = os.pathsep.join([str(library), str(library / "compat")])
        work = self.root / "work"
        work.mkdir()
        _git(work, "init", "-q")
        _git(work, "-c", "user.name=bench", "-c", "user.email=bench@localhost",
             "commit", "-q", "--allow-empty", "-m", "bench")  # fmt: skip
        self.work = work

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def run_round(self, cases: Sequence[Case], round_index: int) -> None:
        for case in cases:
            shift = round_index % len(case.impls)
            for impl in case.impls[shift:] + case.impls[:shift]:
                outcome = self.outcomes.setdefault((case.key, impl.label), Outcome())
                if outcome.status != "ok" or self._skip(cases, case, impl, outcome):
                    continue
                self._measure(case, impl, outcome, round_index)

    def _skip(self, cases: Sequence[Case], case: Case, impl: Impl, outcome: Outcome) -> bool:
        if impl.module in self.pythons and self.pythons[impl.module] is None:
            outcome.status, outcome.message = "skipped", "not run (see above)"
            return True
        for smaller in cases:
            if smaller.group and smaller.group == case.group and smaller.scale < case.scale:
                earlier = self.outcomes.get((smaller.key, impl.label))
                if earlier is not None and earlier.status == "timeout":
                    outcome.status = "skipped"
                    outcome.message = f"not run (timed out at {smaller.scale:,})"
                    return True
        return False

    def _measure(self, case: Case, impl: Impl, outcome: Outcome, round_index: int) -> None:
        python = self.pythons.get(impl.module) or Path(sys.executable)
        params = json.dumps({**case.params, **impl.params})
        workdir = Path(tempfile.mkdtemp(dir=self.work))
        out = workdir / "metrics.json"
        command = [str(python), str(CHILD), impl.module, case.workload, params, str(out)]
        started = time.perf_counter()
        child = subprocess.Popen(
            command,
            cwd=workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            env=None if impl.module in self.pythons else self.env,
        )
        try:
            _, stderr = child.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.communicate()
            outcome.status, outcome.message = "timeout", f"timeout (> {self.timeout:g} s)"
        else:
            if child.returncode == 0:
                metrics = json.loads(out.read_text(encoding="utf-8"))
                outcome.add(metrics)
                if all(value is None for value in metrics.values()):
                    outcome.status = "settled"  # nothing happened in the wait: no need to repeat
            else:
                lines = [line for line in stderr.splitlines() if line.strip()]
                outcome.status = "error"
                head, _, text = lines[-1].partition(": ") if lines else ("exit", "", "")
                outcome.message = f"error: {head.rpartition('.')[2]}: {text or child.returncode}"[
                    :110
                ]
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        elapsed = time.perf_counter() - started
        shown = outcome.message or json.dumps(outcome.values)
        _log(f"[round {round_index + 1}] {case.key} / {impl.label}: {elapsed:.1f} s  {shown[:160]}")


def _machine() -> str:
    model = "unknown CPU"
    with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo", encoding="utf-8") as meminfo:
        total_kib = int(meminfo.readline().split()[1])
    return (
        f"{model}, {os.cpu_count()} cores, {total_kib / 2**20:.1f} GiB RAM, "
        f"{platform.system()} {platform.release()}, "
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"trio {importlib.metadata.version('trio')}"
    )


def _snapshot(rev: str, into: Path) -> Path:
    """The library (runnable_trio/ and compat/) as committed at ``rev``, unpacked into ``into``."""
    into.mkdir()
    archive = into / "library.tar"
    done = subprocess.run(
        ["git", "archive", "-o", str(archive), rev, "runnable_trio", "compat"],
        cwd=BENCH.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"--at {rev}: {done.stderr.strip()}")
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into


def _revision(at: str | None) -> str:
    if at is not None:
        return f"{at} (committed; measured from a git archive, not the working tree)"
    commit = _git(BENCH, "rev-parse", "--short", "HEAD") or "unknown"
    dirty = _git(BENCH.parent, "status", "--porcelain", "--", "runnable_trio", "compat")
    return commit + (" plus uncommitted library changes in the working tree" if dirty else "")


def _report(
    cases: Sequence[Case],
    outcomes: Mapping[tuple[str, str], Outcome],
    *,
    argv: Sequence[str],
    at: str | None,
    repeats: int,
    timeout: float,
    reference_note: str,
    peer_notes: Sequence[str],
    loads: tuple[float, float],
    seconds: float,
) -> str:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join(
        [
            "# runnable_trio benchmarks",
            "",
            f"- Date: {now}; took {seconds / 60:.1f} min. "
            f"Command: `python bench/run.py {' '.join(argv)}`".rstrip(),
            f"- Machine: {_machine()}.",
            f"- runnable_trio at {_revision(at)}; reference: {reference_note}; "
            f"peers: {'; '.join(peer_notes)}.",
            f"- Each figure: median (min - max) of {repeats} runs, each in a fresh process, "
            f"implementations interleaved; limit {timeout:g} s per measurement.",
            f"- Load average {loads[0]:.2f} at the start, {loads[1]:.2f} at the end "
            "(other work may share this machine: read differences under ~10 % as noise).",
            "- Ratios are ours ÷ baseline in the metric's unit: ↑ metrics want above 1, "
            "↓ metrics below 1. See bench/README.md for what each workload does.",
            "",
            render_table(cases, outcomes),
            "",
            summarise_targets(cases, outcomes),
            "",
        ]
    )


def main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes; under 3 minutes")
    parser.add_argument("--workloads", default="", help="comma-separated, e.g. W1,W3 (default all)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (default 3)")
    parser.add_argument("--timeout", type=float, help="seconds per measurement (60; quick: 5)")
    parser.add_argument("--output", type=Path, help="also write the Markdown report here")
    parser.add_argument("--json", type=Path, help="write every raw figure here")
    parser.add_argument("--no-reference", action="store_true", help="skip runnable 0.50")
    parser.add_argument("--no-peers", action="store_true", help="skip LangGraph, pydantic-graph")
    parser.add_argument(
        "--at",
        metavar="REV",
        help="measure the library as committed at REV (e.g. HEAD), not the working tree",
    )
    args = parser.parse_args(argv)
    timeout = args.timeout or (5.0 if args.quick else 60.0)
    wanted = {w.strip().upper() for w in args.workloads.split(",") if w.strip()}
    cases = [c for c in plan(args.quick) if not wanted or c.workload in wanted]
    if not cases:
        parser.error(f"no workload matches {args.workloads!r} (W1 ... W8)")

    if args.no_reference:
        python, note = None, "skipped (--no-reference)"
    else:
        python, note = reference_python(_log)
    _log(f"reference: {note}")
    pythons: dict[str, Path | None] = {"reference": python}
    peer_notes = []
    for peer in PEERS:
        if args.no_peers:
            pythons[peer.module], peer_note = None, f"{peer.label} skipped (--no-peers)"
        else:
            pythons[peer.module], peer_note = peer_python(peer, _log)
        _log(f"{peer.label}: {peer_note}")
        peer_notes.append(peer_note if pythons[peer.module] is None else peer.note)
    started, load_start = time.perf_counter(), os.getloadavg()[0]
    # Resolved once, so the report names the commit measured even if HEAD moves meanwhile.
    at = _git(BENCH, "rev-parse", "--short", args.at) or args.at if args.at else None
    runner = Runner(timeout, pythons, at)

    def report(rounds: int) -> str:
        return _report(
            cases,
            runner.outcomes,
            argv=argv,
            at=at,
            repeats=rounds,
            timeout=timeout,
            reference_note=note if python is None else f"runnable {REFERENCE_VERSION}",
            peer_notes=peer_notes,
            loads=(load_start, os.getloadavg()[0]),
            seconds=time.perf_counter() - started,
        )

    try:
        for round_index in range(args.repeat):
            runner.run_round(cases, round_index)
            if args.output and round_index + 1 < args.repeat:
                # The rounds so far, in case the run is stopped before its end.
                args.output.write_text(report(round_index + 1), encoding="utf-8")
    finally:
        runner.close()
    final = report(args.repeat)
    print(final)
    if args.output:
        args.output.write_text(final, encoding="utf-8")
    if args.json:
        raw = {
            f"{case} / {impl}": {"status": o.status, "message": o.message, "values": o.values}
            for (case, impl), o in runner.outcomes.items()
        }
        args.json.write_text(json.dumps(raw, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
