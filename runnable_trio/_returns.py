"""Return kinds: how a task's named results are kept.

A ``returns`` entry is either a plain name (kept as a JSON-compatible parameter) or one of the
kinds below. ``pickled`` values are kept as Python objects, and pickled into the run's catalog
folder (``.catalog/<run_id>/%pickled/``, whatever the run-log store) so a retry can reload
them; ``metric`` values are parameters that the run log also records as
metrics of the attempt.
"""

from __future__ import annotations

from enum import StrEnum

import attrs

__all__ = ["ReturnKind", "TaskReturns", "json", "metric", "pickled"]


class ReturnKind(StrEnum):
    JSON = "json"
    PICKLED = "pickled"
    METRIC = "metric"


def _check_name(instance: TaskReturns, attribute: attrs.Attribute[str], value: object) -> None:
    if not isinstance(value, str) or not value.isidentifier():
        raise TypeError(f"a return name must be a Python identifier (got {value!r})")


@attrs.frozen
class TaskReturns:
    """One named result of a task and the kind it is kept as."""

    name: str = attrs.field(validator=_check_name)
    kind: ReturnKind = ReturnKind.JSON


def json(name: str) -> TaskReturns:
    """A result kept as a JSON-compatible parameter (the same as giving the bare name)."""
    return TaskReturns(name, ReturnKind.JSON)


def pickled(name: str) -> TaskReturns:
    """A result kept as a Python object: not converted, pickled into the run's catalog."""
    return TaskReturns(name, ReturnKind.PICKLED)


def metric(name: str) -> TaskReturns:
    """A result kept as a parameter and also recorded as a metric of the step."""
    return TaskReturns(name, ReturnKind.METRIC)
