"""Clocks and memory probes used inside a measurement's process.

Standard library only: the reference's own virtual environment imports this module too.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable

__all__ = ["marginal_rate", "median", "now", "peak_rss_mib", "reset_peak_rss", "rss_mib"]

now: Callable[[], float] = time.perf_counter


def _status_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def rss_mib() -> float:
    """The process's resident memory now, in MiB."""
    return _status_kib("VmRSS") / 1024


def peak_rss_mib() -> float:
    """The process's peak resident memory since start or the last reset, in MiB."""
    return _status_kib("VmHWM") / 1024


def reset_peak_rss() -> None:
    """Reset the kernel's peak-RSS mark, so the next peak reflects only what follows."""
    with open("/proc/self/clear_refs", "w", encoding="ascii") as clear_refs:
        clear_refs.write("5")


def marginal_rate(small: int, small_s: float, large: int, large_s: float) -> float:
    """Units per second between two runs of different sizes: fixed costs cancel out."""
    return (large - small) / (large_s - small_s)


def median(values: Iterable[float]) -> float:
    return statistics.median(values)
