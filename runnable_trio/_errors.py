"""The library's exceptions.

Every error the library raises on purpose derives from :class:`RunnableError`::

    RunnableError
    ├── PipelineDefinitionError   a pipeline or step was built wrong (raised at build time)
    │   └── PipelineArgumentError   a missing or unknown argument, a return name not a str
    ├── RunConfigurationError     bad arguments to execute_streaming()/stream(): parameters,
    │                             parameter files, configuration files, run ids
    ├── StepError                 a step could not run or its result was unusable; chained
    │   ├── ParameterError          (``__cause__``) to the user's exception where there is one
    │   ├── ReturnsError
    │   ├── EventError
    │   ├── StepTimeoutError
    │   ├── BranchError
    │   └── TerminatedWithFailure
    └── ExecutionFailedError      what the consumer of a stream receives when the run failed

``PipelineDefinitionError`` and ``RunConfigurationError`` are also ``ValueError`` so that code
catching the usual exception for "bad argument" keeps working; ``PipelineArgumentError`` is
also a ``TypeError``, the exception Python raises for a call with missing or unknown arguments.

Every error pickles and unpickles with its message and its fields (``step``, ``run_id``,
``kind`` ...), so it crosses process boundaries (multiprocessing, pytest-xdist, task queues).
Its ``__cause__`` goes with it when the cause pickles too (an ``ExecutionFailedError`` keeps
the task's exception); like any exception's, its traceback does not.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable
from typing import Any

__all__ = [
    "BranchError",
    "EventError",
    "ExecutionFailedError",
    "ParameterError",
    "PipelineArgumentError",
    "PipelineDefinitionError",
    "ReturnsError",
    "RunConfigurationError",
    "RunnableError",
    "StepError",
    "StepTimeoutError",
    "TerminatedWithFailure",
]


def _rebuild(cls: type[RunnableError], args: tuple[Any, ...]) -> RunnableError:
    # Unpickling must not call ``__init__``: the subclasses' constructors take their fields,
    # not the message that ``args`` holds. The fields come back with ``__dict__``.
    error = cls.__new__(cls, *args)
    error.args = args
    return error


class RunnableError(Exception):
    """The root of every exception this library raises on purpose."""

    def __reduce__(self) -> tuple[Any, ...]:
        state = dict(self.__dict__)
        # The cause is the real story of a failed run: kept when it pickles itself (an
        # exception of a class defined in a function does not, and must not make this fail).
        if self.__cause__ is not None and _pickles(self.__cause__):
            state["__cause__"] = self.__cause__
        return _rebuild, (type(self), self.args), state or None


def _pickles(value: object) -> bool:
    try:
        pickle.dumps(value)
    except Exception:
        return False
    return True


class PipelineDefinitionError(RunnableError, ValueError):
    """A pipeline or one of its steps was built with a value it cannot run.

    Attributes:
        owner: what was being built, e.g. ``AsyncPythonTask 'fetch'`` or ``Retry``.
        field: the argument at fault ("" when the mistake is not one argument's).
        expected: what that argument must be ("" when not one argument's).
        given: ``repr()`` of what was given ("" when not one argument's).
    """

    def __init__(
        self,
        message: str = "",
        *,
        owner: str = "",
        field: str = "",
        expected: str = "",
        given: str = "",
    ) -> None:
        self.owner = owner
        self.field = field
        self.expected = expected
        self.given = given
        super().__init__(message or f"{owner}: {field!r} must be {expected} (got {given})")


class PipelineArgumentError(PipelineDefinitionError, TypeError):
    """A step, ``Retry``, ``Catalog`` or return kind was called with arguments it does not take.

    A required argument missing, an unknown keyword (a typo), too many positional arguments,
    or a return name that is not a str; also a ``TypeError``, as Python's own error for such a
    call is.
    """


class RunConfigurationError(RunnableError, ValueError):
    """An argument of ``execute_streaming()`` / ``stream()`` cannot be used."""


class StepError(RunnableError):
    """A step failed for a reason the framework detected.

    Attributes:
        step: the dotted path of the step, e.g. ``translate.spanish.spanish_task``.
    """

    def __init__(self, step: str, message: str) -> None:
        self.step = step
        super().__init__(f"step {step!r}: {message}")


class ParameterError(StepError):
    """A task's argument is missing or cannot be converted to its annotation."""


class ReturnsError(StepError):
    """A task's result cannot be mapped onto its ``returns``."""


class EventError(StepError):
    """A task's generator yielded something that is not an event dict."""


class StepTimeoutError(StepError):
    """A step ran past its ``timeout`` or stayed silent past its ``idle_timeout``."""

    def __init__(self, step: str, kind: str, seconds: float) -> None:
        self.kind = kind
        self.seconds = seconds
        super().__init__(step, f"{kind} of {seconds:g} s exceeded")


class BranchError(StepError):
    """A composite step cannot choose or combine its branches.

    For example: no ``Conditional`` branch matches the value, or two ``Parallel`` branches
    assigned the same name.
    """


class TerminatedWithFailure(StepError):
    """A step with ``terminate_with_failure=True`` ended its pipeline."""

    def __init__(self, step: str) -> None:
        super().__init__(step, "terminated the pipeline with failure (terminate_with_failure)")


class ExecutionFailedError(RunnableError):
    """The run failed; raised to the consumer of the stream after the last event.

    ``__cause__`` is what failed: the exception itself, or an ``ExceptionGroup`` when several
    concurrent branches failed.

    Attributes:
        run_id: the id of the failed run (its run log can be read by this id).
        step: the dotted path of the step that failed, or ``None`` if the run failed before
            any step started.
        error_type, error_message: what failed, as the run log and the ``run.failed`` event
            record it (the exception's type name and text); ``None`` when the run did not
            fail by an exception (its process stopped, its event loop shut down).
    """

    def __init__(
        self,
        run_id: str,
        step: str | None,
        reason: str,
        *,
        error_type: str | None = None,
        error_message: str | None = None,
    ) -> None:
        self.run_id = run_id
        self.step = step
        self.error_type = error_type
        self.error_message = error_message
        where = f" at step {step!r}" if step else ""
        super().__init__(f"run {run_id!r} failed{where}: {reason}")

    @classmethod
    def of(
        cls, run_id: str, step: str | None, error_type: str | None, error_message: str | None
    ) -> ExecutionFailedError:
        """The failure of a run whose record says ``error_type: error_message``."""
        reason = f"{error_type}: {error_message}" if error_type else "it failed"
        return cls(run_id, step, reason, error_type=error_type, error_message=error_message)


def short_repr(value: object, limit: int = 200) -> str:
    """``repr(value)`` cut to ``limit`` characters, for error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def available_names(values: Iterable[str]) -> str:
    """The names of the parameters a step could have used, for error messages."""
    return ", ".join(sorted(values)) or "none"
