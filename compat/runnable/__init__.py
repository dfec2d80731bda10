"""runnable: runnable_trio for asyncio applications, a drop-in for the reference's async API.

Layers, each importing only from the ones below it:

    facade          __init__ (this file); names, exceptions, defaults, sdk (the reference's
                    modules)
    steps           _task (asyncio-flavoured task functions), _steps (the other step kinds)
    pipeline        _pipeline (execute_streaming/stream from asyncio or Trio), _replay
    bridges         _guest (Trio as a guest of the asyncio loop), _aio (asyncio work awaited
                    from Trio)
    hand-off        _handoff (the bounded hand-off between a Trio and an asyncio task that
                    both bridges use)

This package takes the import name ``runnable``: do not install it beside AstraZeneca's
``runnable``. It is the only part of the project that imports asyncio (and trio-asyncio, lazily,
on a Trio host).
"""

from runnable_trio import SSE_HEADERS as SSE_HEADERS
from runnable_trio import SSE_MEDIA_TYPE as SSE_MEDIA_TYPE
from runnable_trio import Catalog as Catalog
from runnable_trio import ExecutionFailedError as ExecutionFailedError
from runnable_trio import Retry as Retry
from runnable_trio import RunLog as RunLog
from runnable_trio import RunSummary as RunSummary
from runnable_trio import SSEStream as SSEStream
from runnable_trio import Status as Status
from runnable_trio import format_sse as format_sse
from runnable_trio import json as json
from runnable_trio import list_runs as list_runs
from runnable_trio import metric as metric
from runnable_trio import parse_last_event_id as parse_last_event_id
from runnable_trio import pickled as pickled

from . import defaults as defaults
from . import exceptions as exceptions
from . import names as names
from ._aio import HostCancelledError as HostCancelledError
from ._pipeline import AsyncPipeline as AsyncPipeline
from ._pipeline import HostRetry as HostRetry
from ._pipeline import HostRun as HostRun
from ._pipeline import retry_stream as retry_stream
from ._pipeline import retry_streaming as retry_streaming
from ._reader import read_run_log as read_run_log
from ._replay import replay as replay
from ._steps import Conditional as Conditional
from ._steps import Loop as Loop
from ._steps import Map as Map
from ._steps import Parallel as Parallel
from ._steps import Stub as Stub
from ._task import AsyncPythonTask as AsyncPythonTask

__all__ = [
    "SSE_HEADERS",
    "SSE_MEDIA_TYPE",
    "AsyncPipeline",
    "AsyncPythonTask",
    "Catalog",
    "Conditional",
    "ExecutionFailedError",
    "HostCancelledError",
    "HostRetry",
    "HostRun",
    "Loop",
    "Map",
    "Parallel",
    "Retry",
    "RunLog",
    "RunSummary",
    "SSEStream",
    "Status",
    "Stub",
    "defaults",
    "exceptions",
    "format_sse",
    "json",
    "list_runs",
    "metric",
    "names",
    "parse_last_event_id",
    "pickled",
    "read_run_log",
    "replay",
    "retry_stream",
    "retry_streaming",
]
