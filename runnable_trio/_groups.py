"""Exception groups: kept strict inside, reduced only where one error is the whole story."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NoReturn

import trio

__all__ = [
    "leaves",
    "only_cancelled",
    "raise_without_context",
    "reraise_if_cancelled",
    "reraise_single",
]


def raise_without_context(exc: BaseException) -> NoReturn:
    """Raise ``exc`` again, keeping its own ``__context__`` (not the handler's)."""
    context = exc.__context__
    try:
        raise exc
    finally:
        exc.__context__ = context
        del exc, context


def reraise_single(group: BaseExceptionGroup[BaseException]) -> NoReturn:
    """Raise the one member of ``group`` that is not a cancellation, or ``group`` itself.

    Only the group's own members are looked at, so a member that is itself an exception group
    (one the user raised, say) is raised whole, never unwrapped. A group of only ``Cancelled``
    raises its first, so the enclosing cancel scope catches it as usual.
    ``KeyboardInterrupt`` and ``SystemExit``, at any depth, always win.
    """
    reraise_if_cancelled(group)
    for exc in leaves(group):
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise_without_context(exc)
    real = [exc for exc in group.exceptions if not only_cancelled(exc)]
    if len(real) == 1:
        raise_without_context(real[0])
    if not real:
        raise_without_context(next(leaves(group)))
    raise group


def reraise_if_cancelled(group: BaseExceptionGroup[BaseException]) -> None:
    """Raise the first member of ``group`` if every member is a ``Cancelled``; else return.

    The group of a nursery cancelled from outside (every task of a left run's fan-out) holds
    one ``Cancelled`` per task: one pass over it, by exact type (``Cancelled`` cannot be
    subclassed), instead of the walks, ``split`` and lists of the general case. What it
    raises is what :func:`reraise_single` raises for such a group.
    """
    exceptions = group.exceptions
    cancelled = trio.Cancelled
    for exc in exceptions:
        if type(exc) is not cancelled:
            return
    raise_without_context(exceptions[0])


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
