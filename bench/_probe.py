"""Clocks and memory probes used inside a measurement's process.

Standard library only: the reference's own virtual environment imports this module too.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable, Iterable

__all__ = [
    "first_and_warm",
    "marginal",
    "median",
    "now",
    "peak_rss_mib",
    "reset_peak_rss",
    "rss_mib",
]

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


async def marginal(
    run: Callable[[int], Awaitable[float]], small: int, large: int, repeats: int = 3
) -> tuple[float, float]:
    """Seconds per unit between runs of two sizes, and the small run's seconds.

    ``run(size)`` returns the seconds one run of that size took. Fixed costs (starting a run,
    writing its record) cancel out of the difference. After one warm-up, the two sizes
    alternate ``repeats`` times and each side's median is taken, so drift hits both alike.
    """
    await run(small)
    smalls, larges = [], []
    for _ in range(repeats):
        smalls.append(await run(small))
        larges.append(await run(large))
    small_s = statistics.median(smalls)
    return (statistics.median(larges) - small_s) / (large - small), small_s


def warm_of(figures: list[float], warm_runs: int) -> float | None:
    """The median of what :func:`first_and_warm`'s warm runs took (every figure after the
    first), or ``None`` unless each of them gave one."""
    return statistics.median(figures[1:]) if len(figures) == warm_runs + 1 else None


def median(values: Iterable[float]) -> float:
    return statistics.median(values)


async def first_and_warm(
    measure: Callable[[], Awaitable[float | None]], warm_runs: int, *, prefix: str
) -> dict[str, float | None]:
    """``measure()`` in the process's first run, then the median of ``warm_runs`` more.

    ``None`` (nothing happened: the figure does not exist) ends the measuring: the warm
    figure is then ``None`` too. Keys: ``{prefix}_s`` and ``warm_{prefix}_s``.
    """
    first = await measure()
    warm: list[float] = []
    while first is not None and len(warm) < warm_runs:
        figure = await measure()
        if figure is None:
            break
        warm.append(figure)
    return {
        f"{prefix}_s": first,
        f"warm_{prefix}_s": statistics.median(warm) if len(warm) == warm_runs else None,
    }
