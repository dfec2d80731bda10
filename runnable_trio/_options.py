"""``RunOptions``: the keywords of a run (or a retry), checked once, at the call.

Every public way to start a run (``execute_streaming()``, ``stream()``, ``retry_streaming()``,
``retry_stream()`` and compat's methods) takes the same keywords; each builds one frozen
``RunOptions`` with :meth:`RunOptions.check` and hands it to the one prepare path
(``_prepare.prepare_run`` / ``prepare_retry``). ``RUN_KEYWORDS`` and ``RETRY_KEYWORDS`` are the
lists those signatures are pinned to (``tests/test_keywords.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, final

import attrs

from ._errors import RunConfigurationError, short_repr

if TYPE_CHECKING:
    from ._store import RunLogStore

__all__ = [
    "DEFAULT_BUFFER_SIZE",
    "RETRY_KEYWORDS",
    "RUN_KEYWORDS",
    "RunOptions",
    "check_positional_arguments",
]

#: The event buffer's capacity when ``buffer_size`` is not given.
DEFAULT_BUFFER_SIZE = 256

#: The keywords of a run, in the order of ``execute_streaming()``'s signature.
RUN_KEYWORDS = (
    "configuration_file",
    "run_id",
    "tag",
    "parameters_file",
    "log_level",
    "parameters",
    "attribution",
    "buffer_size",
    "event_log",
    "store",
)

#: The keywords of a retry (the run id is its own, required, argument): a retry reruns the
#: recorded run with its recorded parameters and tag.
RETRY_KEYWORDS = (
    "configuration_file",
    "log_level",
    "attribution",
    "buffer_size",
    "event_log",
    "store",
)


@final
@attrs.frozen(kw_only=True)
class RunOptions:
    """How to run: the run keywords, checked (build it with :meth:`check`).

    Attributes:
        run_id: the run's id; ``""`` to have one made.
        tag: free text recorded in the run log.
        parameters: initial parameters given by the caller, or None (read when prepared).
        parameters_file: YAML mapping of initial parameters, or ``""``.
        configuration_file: YAML choosing the store and folders, or ``""``.
        log_level: the run's logging threshold, as a number.
        attribution: attach ``_meta`` to events and stream lifecycle events.
        buffer_size: capacity of the bounded event buffer.
        event_log: record the events for ``replay()``; None takes the configuration's.
        store: the run-log store to use instead of the configured one, or None.
    """

    run_id: str = ""
    tag: str = ""
    parameters: Mapping[str, Any] | None = None
    parameters_file: str = ""
    configuration_file: str = ""
    log_level: int = logging.WARNING
    attribution: bool = False
    buffer_size: int = DEFAULT_BUFFER_SIZE
    event_log: bool | None = None
    store: RunLogStore | None = None

    @classmethod
    def check(
        cls,
        *,
        configuration_file: str = "",
        run_id: str | None = "",
        tag: str = "",
        parameters_file: str = "",
        log_level: int | str = "WARNING",
        parameters: Mapping[str, Any] | None = None,
        attribution: bool = False,
        buffer_size: int | None = None,
        event_log: bool | None = None,
        store: RunLogStore | None = None,
    ) -> RunOptions:
        """The options from the public keywords, each checked and normalised.

        The run id's shape, the two files and the parameters are checked when the run is
        prepared (a retry's id is its own argument; parameters are read, with the environment
        and the file, at that moment), and so is the store against what it holds.

        Raises:
            RunConfigurationError: naming the keyword, what it must be and what was given.
        """
        if (
            type(configuration_file) is type(tag) is type(parameters_file) is str
            and (run_id is None or (type(run_id) is str and not run_id))
            and parameters is None
            and attribution is False
            and buffer_size is None
            and event_log is None
            and store is None
            # As it defaults, else checked (raises if unusable).
            and (log_level == "WARNING" or log_level_number(log_level) == logging.WARNING)
        ):
            # Every keyword as it defaults (``execute_streaming()``, ``stream()``) but the
            # files and the tag, all three str: the one frozen instance of those, not ~20k
            # instructions to build it again at every run.
            if not (configuration_file or tag or parameters_file):
                return _DEFAULTS
            key = (configuration_file, tag, parameters_file)
            options = _by_texts.get(key)
            if options is None:
                if len(_by_texts) >= _BY_TEXTS_KEPT:
                    _by_texts.clear()
                options = _by_texts[key] = cls(
                    tag=tag, parameters_file=parameters_file, configuration_file=configuration_file
                )
            return options
        _check_text("tag", tag)
        if run_id is None:
            run_id = ""
        _check_text("run_id", run_id)
        return cls(
            run_id=run_id,
            tag=tag,
            parameters=parameters,
            parameters_file=parameters_file,
            configuration_file=configuration_file,
            log_level=log_level_number(log_level),
            attribution=bool(attribution),
            buffer_size=check_buffer_size(buffer_size),
            event_log=None if event_log is None else bool(event_log),
            store=store,
        )


#: The options of a run given no keyword (immutable: shared by those runs).
_DEFAULTS = RunOptions()
#: The options of runs given only a configuration file, a parameters file or a tag, by
#: those three (immutable: shared by those runs; the files are read when a run is prepared).
_by_texts: dict[tuple[str, str, str], RunOptions] = {}
_BY_TEXTS_KEPT = 32


def _check_text(keyword: str, value: object) -> None:
    if not isinstance(value, str):
        raise RunConfigurationError(f"{keyword} must be a str (got {value!r})")


def check_buffer_size(buffer_size: int | None) -> int:
    """The event buffer's capacity (the default for ``None``), checked."""
    if buffer_size is None:
        return DEFAULT_BUFFER_SIZE
    if isinstance(buffer_size, bool) or not isinstance(buffer_size, int) or buffer_size < 1:
        raise RunConfigurationError(f"buffer_size must be an int >= 1 (got {buffer_size!r})")
    return buffer_size


def log_level_number(value: int | str) -> int:
    """A logging level given by name or number, checked."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        level = logging.getLevelName(value.upper())
        if isinstance(level, int):
            return level
    raise RunConfigurationError(f"log_level must be a logging level name or number (got {value!r})")


def check_positional_arguments(**given: object) -> None:
    """Refuse a mapping passed where ``execute_streaming()`` takes a str by position.

    ``execute_streaming({"x": 5})`` reads as "run with these parameters", but the first
    positional argument is ``configuration_file``, as in the reference.
    """
    for field, value in given.items():
        if type(value) is not str and isinstance(value, Mapping):  # a str: at once
            raise RunConfigurationError(
                f"execute_streaming(): {field!r} must be a str (got a mapping, "
                f"{short_repr(value)}); parameters are keyword-only: "
                "execute_streaming(parameters={...})"
            )
