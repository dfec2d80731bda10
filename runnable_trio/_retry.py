"""Retry policy for tasks: how many attempts, and how long to wait between them.

``Retry()`` retries: three attempts, waiting 1 s then 2 s. The wait grows geometrically, so
a long policy (``Retry(attempts=1100)``) reaches waits no float can hold: the wait is then
capped at the largest float (effectively forever) rather than raising ``OverflowError``,
which would replace the task's own error. ``max_backoff`` is the way to bound it.
"""

from __future__ import annotations

import math
import sys

import attrs

from ._pipeline import checked_init, definition_error, is_finite_number

__all__ = ["NO_RETRY", "Retry"]

_LONGEST_WAIT = sys.float_info.max
_LOG_LONGEST_WAIT = math.log(_LONGEST_WAIT)


def _check_attempts(instance: Retry, attribute: attrs.Attribute[int], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise definition_error(instance, "attempts", "an int >= 1", value)


def _check_non_negative(instance: Retry, attribute: attrs.Attribute[float], value: object) -> None:
    if value is None and attribute.name == "max_backoff":
        return
    if not is_finite_number(value) or not value >= 0:  # type: ignore[operator]
        expected = "a finite number >= 0"
        raise definition_error(
            instance,
            attribute.name,
            expected + " or None" if attribute.name == "max_backoff" else expected,
            value,
        )


@checked_init
@attrs.frozen(kw_only=True)
class Retry:
    """Try a failed task again, waiting longer after each failure.

    The wait after failed attempt ``n`` (1-based) is ``backoff * factor ** (n - 1)`` seconds,
    at most ``max_backoff``. Only exceptions are retried: cancellation and
    ``KeyboardInterrupt`` end the step at once.

    Args:
        attempts: total number of attempts, the first included (default 3).
        backoff: seconds to wait after the first failure (default 1.0).
        factor: growth of the wait from one failure to the next (default 2.0).
        max_backoff: upper bound of the wait, or None (the default) for no bound.

    Raises:
        PipelineDefinitionError: a value that is not a finite number in range (NaN, inf,
            ``10**400``), or not an int ``attempts``; ``PipelineArgumentError`` (also a
            ``TypeError``) for an unknown keyword.
    """

    attempts: int = attrs.field(default=3, validator=_check_attempts)
    backoff: float = attrs.field(default=1.0, validator=_check_non_negative)
    factor: float = attrs.field(default=2.0, validator=_check_non_negative)
    max_backoff: float | None = attrs.field(default=None, validator=_check_non_negative)

    def delay(self, failed_attempt: int) -> float:
        """Seconds to wait after attempt number ``failed_attempt`` failed (never raises).

        A wait too large for a float is the largest float, unless ``max_backoff`` is lower.
        """
        backoff, factor = float(self.backoff), float(self.factor)
        if backoff == 0.0:
            return 0.0
        try:
            wait = backoff * factor ** (failed_attempt - 1)
        except OverflowError:
            # factor ** n alone is too large for a float (factor > 1): the product may not be
            # (a tiny backoff), so take it through logarithms.
            log_wait = math.log(backoff) + (failed_attempt - 1) * math.log(factor)
            wait = math.exp(log_wait) if log_wait < _LOG_LONGEST_WAIT else math.inf
        wait = min(wait, _LONGEST_WAIT)
        return wait if self.max_backoff is None else min(wait, float(self.max_backoff))


NO_RETRY = Retry(attempts=1, backoff=0.0)
"""The policy of a task given no ``retry``: one attempt."""
