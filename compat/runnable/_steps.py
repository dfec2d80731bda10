"""The step kinds other than tasks: runnable_trio's, with ``as_async_pipeline()`` giving this
package's :class:`~runnable._pipeline.AsyncPipeline`, so that a one-step pipeline streams from
asyncio code too. Their branches run whatever steps they hold, asyncio-flavoured tasks included.
"""

from __future__ import annotations

import runnable_trio

from ._pipeline import CompatStep

__all__ = ["Conditional", "Loop", "Map", "Parallel", "Stub"]


class Stub(CompatStep, runnable_trio.Stub):
    """runnable_trio's :class:`~runnable_trio.Stub`."""

    __slots__ = ()


class Parallel(CompatStep, runnable_trio.Parallel):
    """runnable_trio's :class:`~runnable_trio.Parallel`: branches run concurrently."""

    __slots__ = ()


class Map(CompatStep, runnable_trio.Map):
    """runnable_trio's :class:`~runnable_trio.Map`: one concurrent branch per item."""

    __slots__ = ()


class Conditional(CompatStep, runnable_trio.Conditional):
    """runnable_trio's :class:`~runnable_trio.Conditional`."""

    __slots__ = ()


class Loop(CompatStep, runnable_trio.Loop):
    """runnable_trio's :class:`~runnable_trio.Loop`."""

    __slots__ = ()
