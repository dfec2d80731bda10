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

from ._errors import PipelineArgumentError, short_repr

__all__ = ["ReturnKind", "TaskReturns", "json", "metric", "pickled"]


class ReturnKind(StrEnum):
    JSON = "json"
    PICKLED = "pickled"
    METRIC = "metric"


def _check_name(instance: TaskReturns, attribute: attrs.Attribute[str], value: object) -> None:
    _check_return_name("TaskReturns", value)


def _check_return_name(owner: str, value: object) -> None:
    # A TypeError too, as it always was: the name is the one argument of json()/pickled()...
    if not isinstance(value, str) or not value.isidentifier():
        raise PipelineArgumentError(
            owner=owner,
            field="name",
            expected="a str that is a Python identifier",
            given=short_repr(value),
        )


def _check_kind(
    instance: TaskReturns, attribute: attrs.Attribute[ReturnKind], value: object
) -> None:
    if not isinstance(value, ReturnKind):
        raise PipelineArgumentError(
            owner="TaskReturns",
            field="kind",
            expected=f"a ReturnKind ({', '.join(repr(k.value) for k in ReturnKind)})",
            given=short_repr(value),
        )


def _to_kind(value: object) -> object:
    # "pickled" is as good as ReturnKind.PICKLED; anything else is left for the validator.
    if isinstance(value, ReturnKind):
        return value
    if isinstance(value, str) and value in ReturnKind._value2member_map_:
        return ReturnKind(value)
    return value


@attrs.frozen
class TaskReturns:
    """One named result of a task and the kind it is kept as."""

    name: str = attrs.field(validator=_check_name)
    kind: ReturnKind = attrs.field(
        default=ReturnKind.JSON, converter=_to_kind, validator=_check_kind
    )


def json(name: str) -> TaskReturns:
    """A result kept as a JSON-compatible parameter (the same as giving the bare name).

    Raises:
        PipelineArgumentError: ``name`` is not a str that is a Python identifier.
    """
    _check_return_name("json()", name)
    return TaskReturns(name, ReturnKind.JSON)


def pickled(name: str) -> TaskReturns:
    """A result kept as a Python object: not converted, pickled into the run's catalog.

    Raises:
        PipelineArgumentError: ``name`` is not a str that is a Python identifier.
    """
    _check_return_name("pickled()", name)
    return TaskReturns(name, ReturnKind.PICKLED)


def metric(name: str) -> TaskReturns:
    """A result kept as a parameter and also recorded as a metric of the step.

    Raises:
        PipelineArgumentError: ``name`` is not a str that is a Python identifier.
    """
    _check_return_name("metric()", name)
    return TaskReturns(name, ReturnKind.METRIC)
