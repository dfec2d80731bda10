"""The reference's exception names, raised where the reference raises them.

Each is also one of runnable_trio's errors, so code written for either package catches it::

    ExecutionFailedError    runnable_trio.ExecutionFailedError itself: a run failed (raised by
                            the iteration, after the last event)
    CommandCallError        a task function raised: its exception is the ``__cause__``; this
                            error is the ``__cause__`` of the run's ExecutionFailedError
    RunLogExistsError       a run id already used (a RunConfigurationError, at the call;
                            two runs started with one id before either was recorded are
                            both accepted there, and the loser's ExecutionFailedError has
                            runnable_trio's RunConfigurationError as its cause)
    RunLogNotFoundError     no run with that id: read_run_log(), retry_streaming()
    RetryValidationError    a run that cannot be retried: it succeeded, is still going, or
                            ran another pipeline

The reference's other exception names (``JobLogNotFoundError``, ``NodeNotFoundError``,
``SecretNotFoundError``, ...) belong to its sync executors, jobs and secrets, which this package
does not have: they are absent rather than defined and never raised.
"""

from __future__ import annotations

import runnable_trio
from runnable_trio import ExecutionFailedError as ExecutionFailedError

__all__ = [
    "CommandCallError",
    "ExecutionFailedError",
    "RetryValidationError",
    "RunLogExistsError",
    "RunLogNotFoundError",
]


class CommandCallError(runnable_trio.StepError):
    """A task's function raised; the function's own exception is ``__cause__``.

    Its message is the function's exception (``"ValueError: Empty input"``): the run's
    ``ExecutionFailedError`` names the step already.

    Attributes:
        step: the dotted path of the step.
    """

    def __init__(self, step: str, message: str) -> None:
        self.step = step
        runnable_trio.RunnableError.__init__(self, message)

    def __reduce__(self) -> tuple[type[CommandCallError], tuple[str, str]]:
        return type(self), (self.step, str(self))


class RunLogExistsError(runnable_trio.RunConfigurationError):
    """A run with this id exists already.

    Attributes:
        run_id: the id asked for.
    """

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        super().__init__(f"a run with id {run_id!r} already exists: give each run its own id")

    def __reduce__(self) -> tuple[type[RunLogExistsError], tuple[str]]:
        return type(self), (self.run_id,)


class RunLogNotFoundError(runnable_trio.RunConfigurationError):
    """No run with this id in the run-log store.

    Attributes:
        run_id: the id asked for.
    """

    def __init__(self, run_id: str, where: str = "") -> None:
        self.run_id = run_id
        self.where = where
        super().__init__(f"no run with id {run_id!r}{f' in {where}' if where else ''}")

    def __reduce__(self) -> tuple[type[RunLogNotFoundError], tuple[str, str]]:
        return type(self), (self.run_id, self.where)


class RetryValidationError(runnable_trio.RunConfigurationError):
    """A run that cannot be retried (the message says why)."""
