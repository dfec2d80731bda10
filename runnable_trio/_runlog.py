"""The record of a run: what ran, when, with which parameters, and how it ended.

These are live records (``attrs.define``): the runner fills them in as the run goes, and the
run-log store persists them. Their shape is plain data (str, numbers, datetimes, dicts and
lists of records), so the library's cattrs converter turns them into JSON and back
(:func:`run_log_to_dict`, :func:`run_log_from_dict`; values JSON cannot hold are handled by
``_jsoncodec``).

Nesting follows the pipeline: a ``StepLog`` of a composite step holds one ``BranchLog`` per
branch (Parallel key, Map index, Loop iteration, or ``%on_failure``), each holding the
``StepLog`` of the steps it ran. A step's ``path`` therefore alternates step and branch names
(``translate.spanish.spanish_task``), which is how a journal line finds its place in the tree
(:func:`place_step`).
"""

from __future__ import annotations

import datetime as dt
import functools
import warnings
from collections.abc import Callable, Iterable, Mapping
from enum import StrEnum
from typing import Any, NoReturn

import attrs
import cattrs

from ._convert import make_converter

__all__ = [
    "Attempt",
    "BranchLog",
    "CatalogEntry",
    "CodeIdentity",
    "RunLog",
    "Status",
    "StepLog",
    "first_attempt_records",
    "init_attempt",
    "init_step_log",
    "new_record",
    "place_step",
    "run_log_from_dict",
    "run_log_to_dict",
    "step_log_from_dict",
    "step_log_to_dict",
    "upgrade_run_data",
    "utc_now",
]


class Status(StrEnum):
    PROCESSING = "PROCESSING"
    SUCCESS = "SUCCESS"
    FAIL = "FAIL"
    CANCELLED = "CANCELLED"


#: The time now, in UTC. A ``partial`` of the C function, not a ``def``: it is called twice
#: per attempt (a Python frame each otherwise).
utc_now: Callable[[], dt.datetime] = functools.partial(dt.datetime.now, dt.UTC)


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
    """A file moved between the working folder and the run's catalog.

    Attributes:
        name: the file's path relative to the working folder (``get``/``put``) or to the
            run's catalog folder (``pickled``), with ``/`` separators.
        sha256: hex digest of the file's content.
        stage: ``"get"`` (catalog to working folder, before the task), ``"put"`` (working
            folder to catalog, after it) or ``"pickled"`` (a ``pickled`` return).
        parameter: for ``pickled``, the name of the return the file holds.
    """

    name: str
    sha256: str
    stage: str
    parameter: str | None = None


class _NoEntries(list[CatalogEntry]):
    """The catalog of a step that moved no file: one empty list shared by every such step.

    Most steps move no file, and a list per step is one more object the cyclic GC walks for
    as long as the record lives (a Map over 100,000 items keeps 100,000 records). It reads
    and compares as ``[]``; ``+=`` gives a new list; adding to it in place is refused, as it
    would change every step's: :meth:`StepLog.add_catalog` adds entries. What cannot change an
    empty list (``sort``, ``reverse``, ``clear``, ``pop``...) behaves as on any list.
    """

    __slots__ = ()

    def _refuse(self, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError("a step's empty catalog is shared: add entries with add_catalog()")

    append = extend = insert = __setitem__ = _refuse

    def __iadd__(self, other: Iterable[CatalogEntry]) -> list[CatalogEntry]:  # type: ignore[override,misc]
        return [*other]

    def __copy__(self) -> _NoEntries:
        return self

    def __deepcopy__(self, memo: object) -> _NoEntries:
        return self

    def __reduce__(self) -> str:
        return "NO_ENTRIES"


#: The catalog of every step that has moved no file yet.
NO_ENTRIES = _NoEntries()


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
    catalog: list[CatalogEntry] = NO_ENTRIES
    assigned: dict[str, Any] = attrs.field(factory=dict)

    def add_catalog(self, entries: Iterable[CatalogEntry]) -> None:
        """Record files the step moved (``catalog`` is a list of its own from then on)."""
        if self.catalog is NO_ENTRIES:
            self.catalog = [*entries]
        else:
            self.catalog.extend(entries)

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


#: What calling a record's class does (``object.__new__``, then the ``__init__`` attrs wrote),
#: as two calls the interpreter makes cheaply: a call of a class goes through ``type_call`` and
#: a new run of the eval loop for its Python ``__init__`` (CPython 3.11). The runner makes its
#: records this way (a chain step's two), or sets their fields itself where it makes them per
#: Map item or Parallel branch (:func:`first_attempt_records`, ``fan_out``'s ``BranchLog``).
new_record = object.__new__
init_step_log = StepLog.__init__
init_attempt = Attempt.__init__

_PROCESSING = Status.PROCESSING


def first_attempt_records(
    steps: dict[str, StepLog],
    name: str,
    kind: str,
    path: str,
    started: dt.datetime,
    parameters_in: dict[str, Any] | None,
) -> tuple[StepLog, Attempt]:
    """``StepLog(name, kind, path)`` holding ``Attempt(1, started, parameters_in=...)``, put in
    ``steps``: the records of a step's first attempt (a Map item's, one per item).
    ``parameters_in`` is kept, not copied: a task's arguments' dict, which its call unpacked
    and nothing else holds.

    Their fields are set here, not by the ``__init__`` attrs wrote: its frame and its
    defaults' calls cost each record a few thousand instructions more.
    ``tests/test_inline_records.py`` checks that every field is set, as the class would.
    """
    attempt = new_record(Attempt)
    attempt.number = 1
    attempt.started_at = started
    attempt.ended_at = None
    attempt.status = _PROCESSING
    attempt.error_type = None
    attempt.error_message = None
    attempt.parameters_in = {} if parameters_in is None else parameters_in
    attempt.parameters_out = {}
    attempt.metrics = {}
    log = new_record(StepLog)
    log.name = name
    log.kind = kind
    log.path = path
    log.status = _PROCESSING
    log.attempts = [attempt]
    log.branches = {}
    log.catalog = NO_ENTRIES
    log.assigned = {}
    steps[name] = log
    return log, attempt


@attrs.frozen
class CodeIdentity:
    """The code a run ran: the git commit of the working folder and whether it was dirty.

    ``commit`` and ``dirty`` are ``None`` when they could not be taken (not a git checkout,
    git missing); ``error`` then says why.
    """

    commit: str | None = None
    dirty: bool | None = None
    error: str | None = None


@attrs.define
class RunLog:
    """The whole run.

    ``definition`` describes the pipeline (steps, kinds, functions by qualified name,
    returns, branches) and ``definition_hash`` is the sha256 of its canonical JSON: a retry
    checks it. ``retried_at`` lists when the run was retried (its steps' new attempts are
    recorded in place). A failed run names the step it failed at in ``step`` (the dotted
    path, as the ``run.failed`` event and the SSE error event do) and what failed in
    ``error_type`` and ``error_message``.
    """

    run_id: str
    tag: str = ""
    pipeline_name: str = ""
    status: Status = Status.PROCESSING
    started_at: dt.datetime = attrs.field(factory=utc_now)
    ended_at: dt.datetime | None = None
    parameters_in: dict[str, Any] = attrs.field(factory=dict)
    parameters_out: dict[str, Any] = attrs.field(factory=dict)
    steps: dict[str, StepLog] = attrs.field(factory=dict)
    step: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    definition: dict[str, Any] = attrs.field(factory=dict)
    definition_hash: str = ""
    code: CodeIdentity | None = None
    retried_at: list[dt.datetime] = attrs.field(factory=list)

    def end(self, status: Status, error: BaseException | None = None) -> None:
        self.ended_at = utc_now()
        self.status = status
        if error is not None:
            self.error_type, self.error_message = describe_error(error)

    def reopen(self) -> None:
        """Make an ended run PROCESSING again, for a retry."""
        self.status = Status.PROCESSING
        self.ended_at = None
        self.step = self.error_type = self.error_message = None
        self.retried_at.append(utc_now())

    @property
    def failed_step(self) -> str | None:
        """The former name of :attr:`step` (deprecated: read ``step``)."""
        warnings.warn("RunLog.failed_step is now RunLog.step", DeprecationWarning, stacklevel=2)
        return self.step


#: Keys of a run record that older versions wrote under another name: ``{old: new}``.
_RENAMED = {"failed_step": "step"}


def upgrade_run_data(data: Any) -> Any:
    """A decoded run record (or event-log end) with older key names renamed, in place."""
    if type(data) is dict:
        for old, new in _RENAMED.items():
            if old in data:
                value = data.pop(old)
                data.setdefault(new, value)
    return data


def _make_record_converter() -> cattrs.Converter:
    conv = make_converter()
    # Parameter values are the user's: cattrs would walk them (and choke on tuple keys or
    # cycles); the JSON codec deals with them instead.
    conv.register_unstructure_hook_func(lambda t: t == dict[str, Any], lambda value: value)
    return conv


_records = _make_record_converter()


def run_log_to_dict(run_log: RunLog) -> dict[str, Any]:
    """The run log as plain data; parameter values are left as they are for ``_jsoncodec``."""
    data: dict[str, Any] = _records.unstructure(run_log)
    return data


def run_log_from_dict(data: Any) -> RunLog:
    """A run log from plain data (older key names accepted). Raises a cattrs error if the
    data does not fit."""
    return _records.structure(upgrade_run_data(data), RunLog)


def step_log_to_dict(step: StepLog) -> dict[str, Any]:
    data: dict[str, Any] = _records.unstructure(step)
    return data


def step_log_from_dict(data: Any) -> StepLog:
    return _records.structure(data, StepLog)


def place_step(run_log: RunLog, step: StepLog, parents: Mapping[str, StepLog]) -> None:
    """Put ``step`` at its path in ``run_log``, creating missing enclosing records on the way.

    ``parents`` holds records of composite steps by path, used only where the tree does not
    hold them yet (a placeholder of unknown kind otherwise).
    """
    names = step.path.split(".")
    steps = run_log.steps
    for depth in range(len(names) // 2):
        name, branch_name = names[2 * depth], names[2 * depth + 1]
        found = steps.get(name)
        if found is None:
            path = ".".join(names[: 2 * depth + 1])
            found = parents.get(path)
            if found is None:
                found = StepLog(name, "", path)
            steps[name] = found
        branch = found.branches.get(branch_name)
        if branch is None:
            branch = found.branches[branch_name] = BranchLog(branch_name)
        steps = branch.steps
    placed = steps.get(step.name)
    if placed is not None:
        # A composite's journal line names its branches without their steps, which earlier
        # lines have placed: keep them.
        for key, branch in step.branches.items():
            earlier = placed.branches.get(key)
            if earlier is not None and not branch.steps:
                branch.steps = earlier.steps
    steps[step.name] = step
