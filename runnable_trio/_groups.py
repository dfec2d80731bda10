"""Exception groups: kept strict inside, reduced only where one error is the whole story."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NoReturn

import trio

__all__ = [
    "first_if_all_cancelled",
    "leaves",
    "only_cancelled",
    "raise_without_context",
    "single_member",
]

# The pickers return what to raise and the handler raises it
# (``raise_without_context(single_member(group))``), rather than raising it themselves: a
# frame that still holds the group when the exception leaves it stays on the exception's
# traceback, a cycle (exception, traceback, frame, group, exception) that keeps all it
# reaches (a left run's tasks, frames and records) for the cyclic collector. A handler's
# ``as`` name is unbound as the exception leaves it; an argument on its way to a call is not a
# local of the frame.


def raise_without_context(exc: BaseException) -> NoReturn:
    """Raise ``exc`` again, keeping its own ``__context__`` (not the handler's)."""
    context = exc.__context__
    try:
        raise exc
    finally:
        exc.__context__ = context
        del exc, context


def first_if_all_cancelled(group: BaseExceptionGroup[BaseException]) -> BaseException | None:
    """The first member of ``group`` if every member is a ``Cancelled``, else ``None``.

    The group of a nursery cancelled from outside (every task of a left run's fan-out) holds
    one ``Cancelled`` per task: one pass over it, by exact type (``Cancelled`` cannot be
    subclassed), instead of the walks, ``split`` and lists of the general case. What it
    gives is what :func:`single_member` gives for such a group.
    """
    cancelled = trio.Cancelled
    for exc in group.exceptions:
        if type(exc) is not cancelled:
            return None
    return group.exceptions[0]


def single_member(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one member of ``group`` that is not a cancellation, or ``group`` itself.

    Only the group's own members are looked at, so a member that is itself an exception group
    (one the user raised, say) is given whole, never unwrapped. A group of only ``Cancelled``
    gives its first, so the enclosing cancel scope catches it as usual.
    ``KeyboardInterrupt`` and ``SystemExit``, at any depth, always win.
    """
    first = first_if_all_cancelled(group)
    if first is not None:
        return first
    for exc in leaves(group):
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            return exc
    real = [exc for exc in group.exceptions if not only_cancelled(exc)]
    if len(real) == 1:
        return real[0]
    if not real:
        return next(leaves(group))
    return group


def only_cancelled(exc: BaseException) -> bool:
    """Whether ``exc`` is a ``Cancelled``, or a group holding nothing else."""
    if isinstance(exc, BaseExceptionGroup):
        return all(only_cancelled(member) for member in exc.exceptions)
    return isinstance(exc, trio.Cancelled)


def leaves(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    """The exceptions of ``group`` and of the groups inside it, depth first."""
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from leaves(exc)
        else:
            yield exc
