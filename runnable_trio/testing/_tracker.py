"""Which task functions of a run were called, and whether each call has ended.

A call of a coroutine function has ended when awaiting it returned or raised (cancellation
included), so its ``finally`` blocks have run; a generator's when it has been closed; a plain
def's when its worker thread returned. A call still open after its run has ended is a leak.
"""

from __future__ import annotations

__all__ = ["CallTracker"]


class CallTracker:
    """Counts the calls entered and left, by step path and attempt number."""

    def __init__(self) -> None:
        self.entered: list[tuple[str, int]] = []
        self._open: dict[tuple[str, int], int] = {}

    def enter(self, path: str, attempt: int) -> None:
        key = (path, attempt)
        self.entered.append(key)
        self._open[key] = self._open.get(key, 0) + 1

    def leave(self, path: str, attempt: int) -> None:
        key = (path, attempt)
        left = self._open[key] - 1
        if left:
            self._open[key] = left
        else:
            del self._open[key]

    @property
    def still_open(self) -> list[str]:
        """The calls not ended, as ``"path (attempt n)"``."""
        return [f"{path} (attempt {attempt})" for path, attempt in self._open]
