"""runnable_trio.testing: fault injection and leave-every-way checks for users' test suites.

- Fault injection by step path: ``with inject({"translate.*.llm": Raise(TimeoutError,
  attempt=1)}):`` around a run; the faults are :class:`Raise`, :class:`Delay`, :class:`Hang`,
  :class:`ExtraEvents`, :class:`StopAfter`, :class:`FailPut`.
- :func:`run_to_end` gives ``(events, run_log, error)``; :func:`assert_final`,
  :func:`assert_events` (``"_meta"`` ignored, a diff on failure).
- :func:`leave` / :func:`leave_every_way`: leave a stream each way, then check no task of
  the run is alive, every record is final and every task function call has ended.
- The pytest plugin (``runnable_trio.testing.plugin``, registered as ``runnable_trio``) gives
  fixtures for these; nothing happens in a test that uses none of them.

Importing this package imports neither pytest nor anything else optional.
"""

from ._faults import FAULTS_KEY as FAULTS_KEY
from ._faults import Delay as Delay
from ._faults import ExtraEvents as ExtraEvents
from ._faults import FailPut as FailPut
from ._faults import Fault as Fault
from ._faults import FaultPlan as FaultPlan
from ._faults import Hang as Hang
from ._faults import Injected as Injected
from ._faults import Raise as Raise
from ._faults import StopAfter as StopAfter
from ._faults import inject as inject
from ._faults import path_matches as path_matches
from ._leave import Left as Left
from ._leave import LeftByTheBody as LeftByTheBody
from ._leave import Way as Way
from ._leave import leave as leave
from ._leave import leave_every_way as leave_every_way
from ._leave import run_tasks as run_tasks
from ._leave import ways_for as ways_for
from ._results import RunResult as RunResult
from ._results import assert_events as assert_events
from ._results import assert_final as assert_final
from ._results import not_final as not_final
from ._results import run_to_end as run_to_end
from ._results import strip_meta as strip_meta

__all__ = [
    "FAULTS_KEY",
    "Delay",
    "ExtraEvents",
    "FailPut",
    "Fault",
    "FaultPlan",
    "Hang",
    "Injected",
    "Left",
    "LeftByTheBody",
    "Raise",
    "RunResult",
    "StopAfter",
    "Way",
    "assert_events",
    "assert_final",
    "inject",
    "leave",
    "leave_every_way",
    "not_final",
    "path_matches",
    "run_tasks",
    "run_to_end",
    "strip_meta",
    "ways_for",
]
