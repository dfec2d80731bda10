"""The step kinds other than tasks: runnable_trio's, with ``as_async_pipeline()`` giving this
package's :class:`~runnable._pipeline.AsyncPipeline` (so it streams from asyncio code too)."""

from __future__ import annotations

import runnable_trio

from ._pipeline import CompatStep

__all__ = ["Stub"]


class Stub(CompatStep, runnable_trio.Stub):
    """runnable_trio's :class:`~runnable_trio.Stub`."""

    __slots__ = ()
