"""runnable_trio: pipelines of async functions on Trio, streaming their events in real time.

Layers, each importing only from the ones below it:

    testing         testing/ (fault injection, leave checks, the pytest plugin), imported
                    only by tests: never by the library
    facade          __init__ (this file)
    steps, runner   _task, _stub, _parallel, _map, _conditional, _loop, _runner, _stream
    services        _events, _runlog, _store, _catalog, _params, _config, _runid, _retry,
                    _telemetry (OpenTelemetry, imported only if the application has)
                    _filestore, _stores (the store a configuration names), _files (the
                    file primitives every store, log and catalog writes through)
                    _pgstore, _pgevents, _pgdb, _pgschema (the PostgreSQL store and event
                    log, imported only when a configuration names it)
    base            _errors, _returns, _convert, _groups, _pipeline (the step/pipeline graph)

``_pipeline`` is the one exception: its streaming methods import ``_stream`` when called.
"""

from ._catalog import Catalog as Catalog
from ._conditional import Conditional as Conditional
from ._errors import BranchError as BranchError
from ._errors import EventError as EventError
from ._errors import ExecutionFailedError as ExecutionFailedError
from ._errors import ParameterError as ParameterError
from ._errors import PipelineArgumentError as PipelineArgumentError
from ._errors import PipelineDefinitionError as PipelineDefinitionError
from ._errors import ReturnsError as ReturnsError
from ._errors import RunConfigurationError as RunConfigurationError
from ._errors import RunnableError as RunnableError
from ._errors import StepError as StepError
from ._errors import StepTimeoutError as StepTimeoutError
from ._errors import TerminatedWithFailure as TerminatedWithFailure
from ._events import Lifecycle as Lifecycle
from ._filestore import FileRunLogStore as FileRunLogStore
from ._loop import Loop as Loop
from ._map import Map as Map
from ._parallel import Parallel as Parallel
from ._pipeline import AsyncPipeline as AsyncPipeline
from ._reader import list_runs as list_runs
from ._reader import read_run_log as read_run_log
from ._replay import Replay as Replay
from ._replay import replay as replay
from ._rerun import retry_stream as retry_stream
from ._rerun import retry_streaming as retry_streaming
from ._retry import Retry as Retry
from ._returns import TaskReturns as TaskReturns
from ._returns import json as json
from ._returns import metric as metric
from ._returns import pickled as pickled
from ._runlog import Attempt as Attempt
from ._runlog import BranchLog as BranchLog
from ._runlog import CatalogEntry as CatalogEntry
from ._runlog import CodeIdentity as CodeIdentity
from ._runlog import RunLog as RunLog
from ._runlog import Status as Status
from ._runlog import StepLog as StepLog
from ._sse import SSE_HEADERS as SSE_HEADERS
from ._sse import SSE_MEDIA_TYPE as SSE_MEDIA_TYPE
from ._sse import SSEStream as SSEStream
from ._sse import format_sse as format_sse
from ._sse import parse_last_event_id as parse_last_event_id
from ._store import MemoryRunLogStore as MemoryRunLogStore
from ._store import RunLogStore as RunLogStore
from ._store import RunSummary as RunSummary
from ._stream import EventStream as EventStream
from ._stream import StreamingRun as StreamingRun
from ._stub import Stub as Stub
from ._task import AsyncPythonTask as AsyncPythonTask

__all__ = [
    "AsyncPipeline",
    "AsyncPythonTask",
    "Attempt",
    "BranchError",
    "BranchLog",
    "Catalog",
    "CatalogEntry",
    "CodeIdentity",
    "Conditional",
    "EventError",
    "EventStream",
    "ExecutionFailedError",
    "FileRunLogStore",
    "Lifecycle",
    "Loop",
    "Map",
    "MemoryRunLogStore",
    "Parallel",
    "ParameterError",
    "PipelineArgumentError",
    "PipelineDefinitionError",
    "Replay",
    "Retry",
    "ReturnsError",
    "RunConfigurationError",
    "RunLog",
    "RunLogStore",
    "RunSummary",
    "RunnableError",
    "SSEStream",
    "SSE_HEADERS",
    "SSE_MEDIA_TYPE",
    "Status",
    "StepError",
    "StepLog",
    "StepTimeoutError",
    "StreamingRun",
    "Stub",
    "TaskReturns",
    "TerminatedWithFailure",
    "format_sse",
    "json",
    "list_runs",
    "metric",
    "parse_last_event_id",
    "pickled",
    "read_run_log",
    "replay",
    "retry_stream",
    "retry_streaming",
]
