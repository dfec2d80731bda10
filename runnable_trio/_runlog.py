"""The record of a run: what ran, when, with which parameters, and how it ended.

These are live records (``attrs.define``): the runner fills them in as the run goes, and the
run-log store persists them. Their shape is plain data (str, numbers, datetimes, dicts and
lists of records), so the library's cattrs converter turns them into JSON and back.

Nesting follows the pipeline: a ``StepLog`` of a composite step holds one ``BranchLog`` per
branch (Parallel key, Map index, Loop iteration, or ``%on_failure``), each holding the
``StepLog`` of the steps it ran.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

import attrs

__all__ = ["Attempt", "BranchLog", "CatalogEntry", "RunLog", "Status", "StepLog", "utc_now"]


class Status(StrEnum):
    PROCESSING = "PROCESSING"
    SUCCESS = "SUCCESS"
    FAIL = "FAIL"
    CANCELLED = "CANCELLED"


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def describe_error(exc: BaseException) -> tuple[str, str]:
    """The (type name, message) pair recorded for an exception."""
    return type(exc).__name__, str(exc)


@attrs.define
class Attempt:
    """One try at running a step (a task is tried again under its retry policy)."""

    number: int
    started_at: dt.datetime = attrs.field(factory=utc_now)
    ended_at: dt.datetime | None = None
    status: Status = Status.PROCESSING
    error_type: str | None = None
    error_message: str | None = None
    parameters_in: dict[str, Any] = attrs.field(factory=dict)
    parameters_out: dict[str, Any] = attrs.field(factory=dict)
    metrics: dict[str, Any] = attrs.field(factory=dict)

    def end(self, status: Status, error: BaseException | None = None) -> None:
        self.ended_at = utc_now()
        self.status = status
        if error is not None:
            self.error_type, self.error_message = describe_error(error)


@attrs.define
class CatalogEntry:
    """A file moved between the working folder and the run's catalog."""

    name: str
    sha256: str
    stage: str  # "get" or "put"


@attrs.define
class StepLog:
    """A step of the pipeline as it ran.

    ``assigned`` holds the parameters the step gave back (its returns, or what its branches
    returned); a retry of the run reuses them for steps that succeeded.
    """

    name: str
    kind: str
    path: str
    status: Status = Status.PROCESSING
    attempts: list[Attempt] = attrs.field(factory=list)
    branches: dict[str, BranchLog] = attrs.field(factory=dict)
    catalog: list[CatalogEntry] = attrs.field(factory=list)
    assigned: dict[str, Any] = attrs.field(factory=dict)

    def new_attempt(self) -> Attempt:
        attempt = Attempt(number=len(self.attempts) + 1)
        self.attempts.append(attempt)
        return attempt

    @property
    def error_message(self) -> str | None:
        return self.attempts[-1].error_message if self.attempts else None


@attrs.define
class BranchLog:
    """One branch of a composite step: its steps, in the order they started."""

    name: str
    status: Status = Status.PROCESSING
    steps: dict[str, StepLog] = attrs.field(factory=dict)


@attrs.define
class RunLog:
    """The whole run."""

    run_id: str
    tag: str = ""
    pipeline_name: str = ""
    status: Status = Status.PROCESSING
    started_at: dt.datetime = attrs.field(factory=utc_now)
    ended_at: dt.datetime | None = None
    parameters_in: dict[str, Any] = attrs.field(factory=dict)
    parameters_out: dict[str, Any] = attrs.field(factory=dict)
    steps: dict[str, StepLog] = attrs.field(factory=dict)
    failed_step: str | None = None
    error_type: str | None = None
    error_message: str | None = None

    def end(self, status: Status, error: BaseException | None = None) -> None:
        self.ended_at = utc_now()
        self.status = status
        if error is not None:
            self.error_type, self.error_message = describe_error(error)
