"""runnable_trio: pipelines of async functions on Trio, streaming their events in real time.

Layers, highest first: a module imports only modules of its own layer or of the layers
below it, at module level and inside functions alike (``tests/test_layers.py`` reads this
list and fails on an upward import, on a module missing from it, and on an import cycle):

    testing     testing
    cli         cli, __main__
    facade      __init__, hosting
    run         _rerun, _streaming, _stream, _prepare, _run
    steps       _task, _stub, _parallel, _map, _conditional, _loop
    fanout      _fanout
    runner      _runner, _scope
    graph       _pipeline, _mermaid
    services    _events, _store, _filestore, _snapshot, _steplines, _stores, _config, _catalog,
                _params, _codeid, _eventlog, _retry, _reader, _replay, _sse, _pgstore,
                _pgjournal, _pgevents, _pgdb, _pgloop, _pgschema, _startrecord
    values      _convert, _returns, _runid, _validators, _runlog, _recordread, _files, _writers,
                _writerlock, _options
    core        _errors, _groups, _jsoncodec, _jsontext, _deftext, _offloop, _telemetry,
                _definition, _construct

Allowed upward imports, each inside a function, with its reason:

    _pipeline -> _prepare, _stream, _streaming: ``AsyncPipeline.execute_streaming()`` and
        ``stream()`` start a run, the run layer's job; imported when called

What the layers hold: ``core``, the errors, exception-group helpers, JSON, thread hops, the
bounded event buffer, the OpenTelemetry adapter (``opentelemetry`` imported only if the
application has) and the definition of a pipeline as data; ``values``, the checked values (run
options, validators, returns, ids, the run log) and the file primitives every store, log and
catalog writes through; ``services``, events, stores (``_stores``: the store a configuration
names; ``_pg*``, the PostgreSQL store and event log, imported only when a configuration names
it), configuration, parameters, catalog, event log, readers, replay, SSE; ``graph``, the step
base, ``AsyncPipeline`` and its Mermaid flowchart; ``runner``, the shared policy around a step
and the parameters' scopes it runs in; ``fanout``, the base of composite steps; ``steps``, each
kind of step; ``run``, preparing,
executing and consuming a run (``_stream``, ``_streaming``) and retries; ``facade``, the public
names and ``hosting``, the extension surface for hosts (compat); ``cli``, the command line
(``python -m runnable_trio``, ``runnable-trio``; its optional libraries imported when run);
``testing``, the toolkit for users' tests (fault injection, leave checks, the pytest plugin),
never imported by the library.
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
from ._events import LifecycleEvent as LifecycleEvent
from ._events import Meta as Meta
from ._events import RunCancelled as RunCancelled
from ._events import RunCompleted as RunCompleted
from ._events import RunFailed as RunFailed
from ._events import RunStarted as RunStarted
from ._events import StepCancelled as StepCancelled
from ._events import StepCompleted as StepCompleted
from ._events import StepFailed as StepFailed
from ._events import StepRetrying as StepRetrying
from ._events import StepStarted as StepStarted
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
from ._streaming import StreamingRun as StreamingRun
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
    "LifecycleEvent",
    "Meta",
    "RunCancelled",
    "RunCompleted",
    "RunFailed",
    "RunStarted",
    "StepCancelled",
    "StepCompleted",
    "StepFailed",
    "StepRetrying",
    "StepStarted",
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
