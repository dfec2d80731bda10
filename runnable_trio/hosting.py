"""The extension surface for hosts: what a package running runnable_trio's pipelines on
another event loop (``compat/``, the asyncio drop-in) or in its own way builds on.

Versioned with runnable_trio (``runnable_trio.__version__``): a name here changes only with a
new minor version, and compat pins the version it was written against. Everything else whose
module starts with ``_`` is private and may change in any release.

- :class:`RunOptions` (with :data:`RUN_KEYWORDS`, :data:`RETRY_KEYWORDS`): the run keywords,
  checked once by ``RunOptions.check(**keywords)``;
- :func:`prepare_run` / :func:`prepare_retry`: a :class:`PreparedRun` from options, everything
  read and checked at the call, synchronously;
- :func:`open_stream`: run a prepared run in the caller's ``async with`` block (on Trio),
  yielding its :class:`EventStream`; :func:`start_streaming`: the ``StreamingRun`` iterator
  over a prepared run (what ``execute_streaming()`` returns);
- :func:`check_called_from_trio`, :func:`check_positional_arguments`: the refusals of a
  Trio-only call made from other code and of a mapping passed where a path goes;
- for steps of a host's own: :class:`BaseStep` (``as_async_pipeline()`` may be overridden to
  give the host's pipeline class), :class:`TaskKind` (``AsyncPythonTask.function_kind``: what
  kind of callable a task calls), and, for the signature of the overridable
  ``AsyncPythonTask._execute(ctx, scope, path, log)``, :class:`RunContext` and :class:`Scope`;
- :class:`EventLogSink`: what a run's stream uses of its event log (``PreparedRun.event_log``),
  for a host that logs on its own consumer's side.
"""

from ._eventlog import EventLogSink as EventLogSink
from ._options import RETRY_KEYWORDS as RETRY_KEYWORDS
from ._options import RUN_KEYWORDS as RUN_KEYWORDS
from ._options import RunOptions as RunOptions
from ._options import check_positional_arguments as check_positional_arguments
from ._pipeline import BaseStep as BaseStep
from ._prepare import check_called_from_trio as check_called_from_trio
from ._prepare import prepare_run as prepare_run
from ._rerun import prepare_retry as prepare_retry
from ._run import PreparedRun as PreparedRun
from ._runner import RunContext as RunContext
from ._scope import Scope as Scope
from ._stream import EventStream as EventStream
from ._stream import open_stream as open_stream
from ._streaming import start_streaming as start_streaming
from ._task import TaskKind as TaskKind

__all__ = [
    "RETRY_KEYWORDS",
    "RUN_KEYWORDS",
    "BaseStep",
    "EventLogSink",
    "EventStream",
    "PreparedRun",
    "RunContext",
    "RunOptions",
    "Scope",
    "TaskKind",
    "check_called_from_trio",
    "check_positional_arguments",
    "open_stream",
    "prepare_retry",
    "prepare_run",
    "start_streaming",
]
