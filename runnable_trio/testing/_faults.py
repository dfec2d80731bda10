"""Fault injection: make a step fail, stall, hang or misbehave without touching its function.

A :class:`FaultPlan` maps step-path patterns to faults. ``inject(plan)`` is a context manager:
runs started inside its block (the ``async with pipeline.stream()`` entered, or the first event
of ``execute_streaming()`` asked for) apply it, through a context variable, so no run signature
changes and concurrent tests never see each other's plans. A run keeps the plan it started
with, even past the end of the block.

The faults act around the task's function, at the call the framework makes (``_task.py`` calls
:data:`runnable_trio._task.fault_hook` once per attempt; it is ``None`` until a plan is first
used, so runs without one pay a single check). Each fault applied is recorded in the attempt's
``metrics`` under ``"runnable_trio.faults"`` (so a failing run log shows what was injected),
in :attr:`FaultPlan.injected`, and as a note on an injected exception.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import errno
import fnmatch
import math
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Iterable, Iterator, Mapping
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, Literal

import attrs
import trio

from .. import _task
from .._returns import ReturnKind

if TYPE_CHECKING:
    from .._runlog import StepLog
    from .._task import AsyncPythonTask
    from ._tracker import CallTracker

__all__ = [
    "FAULTS_KEY",
    "Delay",
    "ExtraEvents",
    "FailPut",
    "Fault",
    "FaultPlan",
    "Hang",
    "Injected",
    "Raise",
    "StopAfter",
    "inject",
]

#: The key of the attempt ``metrics`` entry listing the faults applied to the attempt.
FAULTS_KEY = "runnable_trio.faults"

When = Literal["before", "after"]


def _check_attempt(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    numbers = (value,) if isinstance(value, int) else value
    if not isinstance(numbers, tuple | frozenset | set | list) or not all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in numbers
    ):
        raise ValueError(
            f"{type(instance).__name__}: 'attempt' must be None (every attempt), an attempt "
            f"number >= 1 or a collection of them (got {value!r})"
        )


def _check_count(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None and attribute.name == "after_event":
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(
            f"{type(instance).__name__}: {attribute.name!r} must be an event count >= 0 "
            f"(got {value!r})"
        )


def _check_when(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value not in ("before", "after"):
        raise ValueError(
            f"{type(instance).__name__}: 'when' must be 'before' or 'after' (got {value!r})"
        )


@attrs.frozen(kw_only=True)
class Fault:
    """What every fault has: the attempts it applies to (``None``: every attempt)."""

    attempt: int | Iterable[int] | None = attrs.field(default=None, validator=_check_attempt)

    #: Whether the fault needs an async generator step.
    streaming_only = False

    def applies_to(self, number: int) -> bool:
        if self.attempt is None:
            return True
        if isinstance(self.attempt, int):
            return number == self.attempt
        return number in self.attempt

    def describe(self) -> str:
        raise NotImplementedError


def _error_text(error: BaseException | type[BaseException]) -> str:
    if isinstance(error, type):
        return error.__name__
    return f"{type(error).__name__}({str(error)!r})"


def _check_error(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    ok = isinstance(value, BaseException) or (
        isinstance(value, type) and issubclass(value, BaseException)
    )
    if not ok:
        raise ValueError(
            f"{type(instance).__name__}: 'error' must be an exception or exception class "
            f"(got {value!r})"
        )


@attrs.frozen(kw_only=True)
class Raise(Fault):
    """Raise ``error`` (an instance, copied per raise, or a class) instead of the call's result.

    ``when="before"`` (default) raises before the function is called (it never runs),
    ``"after"`` once it has returned; ``after_event=k`` raises in a generator step after its
    k-th event.
    """

    error: BaseException | type[BaseException] = attrs.field(kw_only=False, validator=_check_error)
    when: When = attrs.field(default="before", validator=_check_when)
    after_event: int | None = attrs.field(default=None, validator=_check_count)

    @property
    def streaming_only(self) -> bool:  # type: ignore[override]
        return self.after_event is not None

    def make(self) -> BaseException:
        if isinstance(self.error, type):
            return self.error()
        return copy.copy(self.error)

    def describe(self) -> str:
        where = f"after event {self.after_event}" if self.after_event is not None else self.when
        return f"raise {_error_text(self.error)} {where}"


def _check_seconds(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
        raise ValueError(
            f"{type(instance).__name__}: 'seconds' must be a finite number >= 0 (got {value!r})"
        )


@attrs.frozen(kw_only=True)
class Delay(Fault):
    """Sleep ``seconds`` before (default) or after the call, or after a generator's k-th event.

    The sleep is inside the attempt: it counts against the step's ``timeout``, and an
    ``idle_timeout`` when it follows an event.
    """

    seconds: float = attrs.field(kw_only=False, validator=_check_seconds)
    when: When = attrs.field(default="before", validator=_check_when)
    after_event: int | None = attrs.field(default=None, validator=_check_count)

    @property
    def streaming_only(self) -> bool:  # type: ignore[override]
        return self.after_event is not None

    def describe(self) -> str:
        where = f"after event {self.after_event}" if self.after_event is not None else self.when
        return f"delay {self.seconds:g}s {where}"


@attrs.frozen(kw_only=True)
class Hang(Fault):
    """Wait until cancelled: before the call, or in a generator step after its k-th event."""

    after_event: int | None = attrs.field(default=None, validator=_check_count)

    @property
    def streaming_only(self) -> bool:  # type: ignore[override]
        return self.after_event is not None

    def describe(self) -> str:
        where = f"after event {self.after_event}" if self.after_event is not None else "before"
        return f"hang {where}"


def _events_converter(value: object) -> object:
    return tuple(value) if isinstance(value, list | tuple) else value


def _check_events(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, tuple) or not value or not all(isinstance(e, dict) for e in value):
        raise ValueError(f"ExtraEvents: 'events' must be a non-empty list of dicts (got {value!r})")


@attrs.frozen(kw_only=True)
class ExtraEvents(Fault):
    """Make a generator step yield ``events`` after its k-th event (0: before the first)."""

    events: tuple[dict[str, Any], ...] = attrs.field(
        kw_only=False, converter=_events_converter, validator=_check_events
    )
    after_event: int = attrs.field(default=0, validator=_check_count)
    streaming_only = True

    def describe(self) -> str:
        return f"{len(self.events)} extra event(s) after event {self.after_event}"


@attrs.frozen(kw_only=True)
class StopAfter(Fault):
    """End a generator step's stream after its k-th event (the generator is closed)."""

    events: int = attrs.field(kw_only=False, validator=_check_count)
    streaming_only = True

    def describe(self) -> str:
        return f"stop the generator after event {self.events}"


def _default_put_error() -> BaseException:
    return OSError(errno.ENOSPC, "No space left on device (injected catalog put failure)")


@attrs.frozen(kw_only=True)
class FailPut(Fault):
    """Fail the step's catalog put (its ``put`` files and ``pickled`` returns) with ``error``.

    The function has run and returned; its results are not published, as when the catalog
    cannot store them. By default an ``OSError`` (ENOSPC).
    """

    error: BaseException | type[BaseException] | None = attrs.field(default=None, kw_only=False)

    def make(self) -> BaseException:
        if self.error is None:
            return _default_put_error()
        return self.error() if isinstance(self.error, type) else copy.copy(self.error)

    def describe(self) -> str:
        return f"fail the catalog put with {_error_text(self.error or _default_put_error())}"


@attrs.frozen
class Injected:
    """One fault applied: where, at which attempt, what."""

    path: str
    attempt: int
    fault: Fault

    def __str__(self) -> str:
        return f"{self.path} attempt {self.attempt}: {self.fault.describe()}"


def path_matches(pattern: str, path: str) -> bool:
    """Whether a step path matches a pattern of dot-separated parts.

    Each part is a shell-style pattern of one path part (``*``, ``?``, ``[...]``); ``**``
    matches any number of parts (zero included). ``"translate.*.llm"`` matches
    ``translate.spanish.llm``; ``"**.call"`` any step named ``call``.
    """
    return _match(pattern.split("."), path.split("."))


def _match(parts: list[str], names: list[str]) -> bool:
    if not parts:
        return not names
    head, rest = parts[0], parts[1:]
    if head == "**":
        return any(_match(rest, names[i:]) for i in range(len(names) + 1))
    return bool(names) and fnmatch.fnmatchcase(names[0], head) and _match(rest, names[1:])


def _entries(
    faults: Mapping[str, Fault | Iterable[Fault]] | Iterable[tuple[str, Fault]],
) -> Iterator[tuple[str, Fault]]:
    items = faults.items() if isinstance(faults, Mapping) else faults
    for item in items:
        if not (isinstance(item, tuple) and len(item) == 2):
            raise ValueError(f"FaultPlan: expected (pattern, fault) pairs (got {item!r})")
        pattern, value = item
        if not isinstance(pattern, str) or not pattern or "" in pattern.split("."):
            raise ValueError(
                f"FaultPlan: a pattern must be a step path like 'translate.*.llm' (got {pattern!r})"
            )
        for fault in (value,) if isinstance(value, Fault) else value:
            if not isinstance(fault, Fault):
                raise ValueError(
                    f"FaultPlan: {pattern!r} must map to a fault (Raise, Delay, Hang, "
                    f"ExtraEvents, StopAfter, FailPut) or a list of them (got {fault!r})"
                )
            yield pattern, fault


class FaultPlan:
    """Faults by step-path pattern: ``FaultPlan({"translate.*.llm": Raise(TimeoutError)})``.

    Several faults may apply to one step (a list, or several matching patterns); they act in
    the plan's order. ``injected`` lists every fault applied, in order.
    """

    def __init__(
        self,
        faults: Mapping[str, Fault | Iterable[Fault]] | Iterable[tuple[str, Fault]] = (),
    ) -> None:
        self.entries: tuple[tuple[str, Fault], ...] = tuple(_entries(faults))
        self.injected: list[Injected] = []
        self._by_path: dict[str, tuple[Fault, ...]] = {}

    def __repr__(self) -> str:
        inside = ", ".join(f"{p!r}: {f.describe()}" for p, f in self.entries)
        return f"FaultPlan({{{inside}}})"

    def faults_for(self, path: str) -> tuple[Fault, ...]:
        """The faults whose pattern matches ``path``, every attempt included."""
        found = self._by_path.get(path)
        if found is None:
            found = self._by_path[path] = tuple(f for p, f in self.entries if path_matches(p, path))
        return found

    def injected_at(self, pattern: str) -> list[Injected]:
        """The faults applied at the steps matching ``pattern``."""
        return [i for i in self.injected if path_matches(pattern, i.path)]


_plan: contextvars.ContextVar[FaultPlan | None] = contextvars.ContextVar(
    "runnable_trio.testing.plan", default=None
)
_tracker: contextvars.ContextVar[CallTracker | None] = contextvars.ContextVar(
    "runnable_trio.testing.tracker", default=None
)


#: The plans of ``inject(..., everywhere=True)`` blocks, innermost last.
_everywhere: list[FaultPlan] = []


def current_plan() -> FaultPlan | None:
    """The plan runs started here would apply, if any."""
    plan = _plan.get()
    if plan is None and _everywhere:
        return _everywhere[-1]
    return plan


def install_hook() -> None:
    """Let ``_task.py`` ask for faults (done once, when a plan or tracker is first used)."""
    _task.fault_hook = _faults_for_attempt


@contextlib.contextmanager
def inject(
    plan: FaultPlan | Mapping[str, Fault | Iterable[Fault]] | Iterable[tuple[str, Fault]],
    *,
    everywhere: bool = False,
) -> Iterator[FaultPlan]:
    """Apply ``plan`` to the runs started inside the block; gives the plan (see ``injected``).

    Blocks nest: the inner plan replaces the outer one for runs started inside it.

    Args:
        everywhere: apply the plan, while the block lasts, to every step of every run of the
            process that has no plan of its own, wherever it started (a run a server starts
            in its own task, say).
    """
    if not isinstance(plan, FaultPlan):
        plan = FaultPlan(plan)
    install_hook()
    if everywhere:
        _everywhere.append(plan)
        try:
            yield plan
        finally:
            _everywhere.remove(plan)
        return
    token = _plan.set(plan)
    try:
        yield plan
    finally:
        _plan.reset(token)


@contextlib.contextmanager
def tracking(tracker: CallTracker) -> Iterator[CallTracker]:
    """Record every task function call of the runs started inside the block."""
    install_hook()
    token = _tracker.set(tracker)
    try:
        yield tracker
    finally:
        _tracker.reset(token)


def _faults_for_attempt(task: AsyncPythonTask, path: str, log: StepLog) -> AttemptFaults | None:
    plan = current_plan()
    tracker = _tracker.get()
    if plan is None and tracker is None:
        return None
    number = len(log.attempts)
    faults = () if plan is None else plan.faults_for(path)
    faults = tuple(f for f in faults if f.applies_to(number))
    if not faults and tracker is None:
        return None
    return AttemptFaults(task, path, log, number, faults, plan, tracker)


class AttemptFaults:
    """The faults of one attempt at one task, applied around its call or its stream."""

    def __init__(
        self,
        task: AsyncPythonTask,
        path: str,
        log: StepLog,
        number: int,
        faults: tuple[Fault, ...],
        plan: FaultPlan | None,
        tracker: CallTracker | None,
    ) -> None:
        self._path = path
        self._log = log
        self._number = number
        self._faults = faults
        self._plan = plan
        self._tracker = tracker
        streaming = task._kind is _task._Kind.GENERATOR
        for fault in faults:
            if fault.streaming_only and not streaming:
                raise ValueError(
                    f"fault plan: {fault.describe()!r} matched {path!r}, which is not an async "
                    "generator step (it has no events to count)"
                )
            if isinstance(fault, FailPut) and not _puts_anything(task):
                raise ValueError(
                    f"fault plan: {fault.describe()!r} matched {path!r}, which puts nothing "
                    "in the catalog (no Catalog(put=...) and no pickled returns)"
                )

    def _record(self, fault: Fault) -> None:
        injected = Injected(self._path, self._number, fault)
        if self._plan is not None:
            self._plan.injected.append(injected)
        if self._log.attempts:
            self._log.attempts[-1].metrics.setdefault(FAULTS_KEY, []).append(fault.describe())

    def _raise(self, fault: Raise | FailPut) -> None:
        self._record(fault)
        error = fault.make()
        where = Injected(self._path, self._number, fault)
        error.add_note(f"injected by runnable_trio.testing: {where}")
        raise error

    async def _act(self, fault: Fault) -> None:
        if isinstance(fault, Raise):
            self._raise(fault)
        elif isinstance(fault, Delay):
            self._record(fault)
            await trio.sleep(fault.seconds)
        elif isinstance(fault, Hang):
            self._record(fault)
            await trio.sleep_forever()

    async def _at(self, when: When) -> None:
        for fault in self._faults:
            if isinstance(fault, Raise | Delay) and fault.after_event is None:
                if fault.when == when:
                    await self._act(fault)
            elif isinstance(fault, Hang) and fault.after_event is None and when == "before":
                await self._act(fault)
            elif isinstance(fault, FailPut) and when == "after":
                self._raise(fault)

    async def call(self, awaitable: Awaitable[Any]) -> Any:
        """Await the task's call (a coroutine or a worker thread) with the faults around it."""
        entered = False
        try:
            await self._at("before")
            entered = True
            if self._tracker is not None:
                self._tracker.enter(self._path, self._number)
            try:
                result = await awaitable
            finally:
                if self._tracker is not None:
                    self._tracker.leave(self._path, self._number)
            await self._at("after")
            return result
        finally:
            if not entered:
                close = getattr(awaitable, "close", None)
                if close is not None:
                    close()  # never awaited: no "coroutine was never awaited" warning

    async def stream(self, generator: AsyncIterator[Any]) -> AsyncGenerator[Any, None]:
        """The generator's events with the faults among them."""
        entered = False
        try:
            async with aclosing(generator):  # type: ignore[type-var]
                await self._at("before")
                entered = True
                if self._tracker is not None:
                    self._tracker.enter(self._path, self._number)
                for event in self._extra(0):
                    yield event
                if self._stops_at(0):
                    return
                count = 0
                async for event in generator:
                    count += 1
                    yield event
                    for extra in self._extra(count):
                        yield extra
                    await self._after_event(count)
                    if self._stops_at(count):
                        return
                await self._at("after")
        finally:
            if entered and self._tracker is not None:
                self._tracker.leave(self._path, self._number)

    def _extra(self, count: int) -> Iterator[dict[str, Any]]:
        for fault in self._faults:
            if isinstance(fault, ExtraEvents) and fault.after_event == count:
                self._record(fault)
                for event in fault.events:
                    yield dict(event)

    def _stops_at(self, count: int) -> bool:
        for fault in self._faults:
            if isinstance(fault, StopAfter) and fault.events == count:
                self._record(fault)
                return True
        return False

    async def _after_event(self, count: int) -> None:
        for fault in self._faults:
            if isinstance(fault, Raise | Delay | Hang) and fault.after_event == count:
                await self._act(fault)


def _puts_anything(task: AsyncPythonTask) -> bool:
    if task.catalog is not None and task.catalog.put:
        return True
    return any(r.kind is ReturnKind.PICKLED for r in task.returns)
