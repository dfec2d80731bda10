"""Exception groups: kept strict inside, reduced only where one error is the whole story."""

from __future__ import annotations

from typing import NoReturn

import trio

__all__ = ["raise_without_context", "reraise_single"]


def raise_without_context(exc: BaseException) -> NoReturn:
    """Raise ``exc`` again, keeping its own ``__context__`` (not the handler's)."""
    context = exc.__context__
    try:
        raise exc
    finally:
        exc.__context__ = context
        del exc, context


def reraise_single(group: BaseExceptionGroup[BaseException]) -> NoReturn:
    """Raise the one non-``Cancelled`` exception of ``group``, or ``group`` itself.

    A group of only ``Cancelled`` raises its first member, so the enclosing cancel scope
    catches it as usual. ``KeyboardInterrupt`` and ``SystemExit`` always win.
    """
    leaves = list(_leaves(group))
    for exc in leaves:
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise_without_context(exc)
    real = [exc for exc in leaves if not isinstance(exc, trio.Cancelled)]
    if len(real) == 1:
        raise_without_context(real[0])
    if not real:
        raise_without_context(leaves[0])
    raise group


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    found: list[BaseException] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            found.extend(_leaves(exc))
        else:
            found.append(exc)
    return found
