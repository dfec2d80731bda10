"""runnable: runnable_trio for asyncio applications, a drop-in for the reference's async API.

Layers, each importing only from the ones below it:

    facade          __init__ (this file)
    steps           _task (asyncio-flavoured task functions), _steps (the other step kinds)
    pipeline        _pipeline (execute_streaming/stream from asyncio or Trio), _replay
    bridges         _guest (Trio as a guest of the asyncio loop), _aio (asyncio work awaited
                    from Trio)

This package takes the import name ``runnable``: do not install it beside AstraZeneca's
``runnable``. It is the only part of the project that imports asyncio (and trio-asyncio, lazily,
on a Trio host).
"""

from runnable_trio import Catalog as Catalog
from runnable_trio import ExecutionFailedError as ExecutionFailedError
from runnable_trio import json as json
from runnable_trio import metric as metric
from runnable_trio import pickled as pickled

from ._aio import HostCancelledError as HostCancelledError
from ._pipeline import AsyncPipeline as AsyncPipeline
from ._pipeline import HostRun as HostRun
from ._replay import replay as replay
from ._steps import Conditional as Conditional
from ._steps import Loop as Loop
from ._steps import Map as Map
from ._steps import Parallel as Parallel
from ._steps import Stub as Stub
from ._task import AsyncPythonTask as AsyncPythonTask

__all__ = [
    "AsyncPipeline",
    "AsyncPythonTask",
    "Catalog",
    "Conditional",
    "ExecutionFailedError",
    "HostCancelledError",
    "HostRun",
    "Loop",
    "Map",
    "Parallel",
    "Stub",
    "json",
    "metric",
    "pickled",
    "replay",
]
