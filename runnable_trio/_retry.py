"""Retry policy for tasks: how many attempts, and how long to wait between them."""

from __future__ import annotations

import math

import attrs

from ._errors import PipelineDefinitionError

__all__ = ["Retry"]


def _check_attempts(instance: Retry, attribute: attrs.Attribute[int], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise PipelineDefinitionError(f"Retry: 'attempts' must be an int >= 1 (got {value!r})")


def _check_non_negative(instance: Retry, attribute: attrs.Attribute[float], value: object) -> None:
    if value is None and attribute.name == "max_backoff":
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
        raise PipelineDefinitionError(
            f"Retry: {attribute.name!r} must be a finite number >= 0 (got {value!r})"
        )


@attrs.frozen(kw_only=True)
class Retry:
    """Try a failed task again, waiting longer after each failure.

    The wait after failed attempt ``n`` (1-based) is ``backoff * factor ** (n - 1)`` seconds,
    at most ``max_backoff``. Only exceptions are retried: cancellation and
    ``KeyboardInterrupt`` end the step at once.

    Args:
        attempts: total number of attempts, the first included.
        backoff: seconds to wait after the first failure.
        factor: growth of the wait from one failure to the next.
        max_backoff: upper bound of the wait, or None for no bound.
    """

    attempts: int = attrs.field(default=1, validator=_check_attempts)
    backoff: float = attrs.field(default=0.0, validator=_check_non_negative)
    factor: float = attrs.field(default=2.0, validator=_check_non_negative)
    max_backoff: float | None = attrs.field(default=None, validator=_check_non_negative)

    def delay(self, failed_attempt: int) -> float:
        """Seconds to wait after attempt number ``failed_attempt`` failed."""
        wait = self.backoff * self.factor ** (failed_attempt - 1)
        return wait if self.max_backoff is None else min(wait, self.max_backoff)


NO_RETRY = Retry()
