"""Retrying a failed run: run again only what did not succeed, in the same run log.

``retry_streaming(pipeline, run_id)`` (an iterator, like ``execute_streaming()``) and
``retry_stream(pipeline, run_id)`` (an ``async with``, like ``stream()``) take the record of a
run that ended ``FAIL`` or ``CANCELLED`` (or stayed ``PROCESSING`` because its process died)
and run the pipeline again under the same id, from the same initial parameters:

- a step that succeeded is not run again: its recorded outputs are put back in scope (a
  ``pickled`` output is loaded from the run's catalog) and its record is kept as it was;
- a step that did not succeed runs again, and its new attempts are appended to its record;
  inside a composite step the same rule applies to each step of each branch and map item, so
  only the failed items run again.

A succeeded step whose outputs were not recorded faithfully (a value JSON cannot hold, written
as a ``$repr`` marker, see ``_jsoncodec``) runs again too: reusing a ``repr`` would be wrong.
The pipeline must be the one that ran (same definition hash): its functions may have been
fixed, but steps may not have been added, removed or renamed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

from ._catalog import RunCatalog
from ._config import load_configuration
from ._definition import definition_of
from ._errors import RunConfigurationError
from ._eventlog import open_event_log
from ._jsoncodec import has_repr_marker
from ._runid import validate_run_id
from ._runlog import RunLog, Status, StepLog
from ._store import RunLogStore
from ._stores import store_from_configuration
from ._stream import (
    EventStream,
    PreparedRun,
    StreamingRun,
    check_buffer_size,
    log_level_number,
    open_stream,
)

if TYPE_CHECKING:
    from ._pipeline import AsyncPipeline

__all__ = ["retry_stream", "retry_streaming"]


def retry_streaming(
    pipeline: AsyncPipeline,
    run_id: str,
    configuration_file: str = "",
    log_level: int | str = "WARNING",
    *,
    attribution: bool = False,
    buffer_size: int | None = None,
    event_log: bool | None = None,
    store: RunLogStore | None = None,
) -> StreamingRun:
    """Retry the failed run ``run_id``, iterating over the events of what runs again.

    Args:
        pipeline: the pipeline the run ran (same definition).
        run_id: the failed run.
        configuration_file: the configuration the run used (it says where its record is).
        log_level, attribution, buffer_size, event_log: as for ``execute_streaming()``.
        store: the store holding the run, instead of the configured one (e.g. the
            ``MemoryRunLogStore`` a test ran it with).

    Raises:
        RunConfigurationError: at the call, if there is no such run, it succeeded, it is
            still going, its pipeline changed, or its initial parameters were not recorded
            faithfully.
        ExecutionFailedError: from the iteration, after the last event, if it fails again.
    """
    return StreamingRun(
        _prepare_retry(
            pipeline, run_id, configuration_file, log_level, attribution, buffer_size,
            event_log, store,
        )
    )  # fmt: skip


def retry_stream(
    pipeline: AsyncPipeline,
    run_id: str,
    *,
    configuration_file: str = "",
    log_level: int | str = "WARNING",
    attribution: bool = False,
    buffer_size: int | None = None,
    event_log: bool | None = None,
    store: RunLogStore | None = None,
) -> AbstractAsyncContextManager[EventStream]:
    """Retry the failed run ``run_id`` in an ``async with`` block, as ``stream()`` runs one.

    Arguments and errors are as for :func:`retry_streaming`; leaving the block early cancels
    the retry, and the run ends ``CANCELLED`` (it can be retried again).
    """
    return open_stream(
        _prepare_retry(
            pipeline, run_id, configuration_file, log_level, attribution, buffer_size,
            event_log, store,
        )
    )  # fmt: skip


def _prepare_retry(
    pipeline: AsyncPipeline,
    run_id: str,
    configuration_file: str,
    log_level: int | str,
    attribution: bool,
    buffer_size: int | None,
    event_log: bool | None,
    store: RunLogStore | None,
) -> PreparedRun:
    validate_run_id(run_id)
    configuration = load_configuration(configuration_file)
    if store is None:
        store = store_from_configuration(configuration)
    try:
        run_log = store.load(run_id)
    except KeyError:
        raise RunConfigurationError(f"no run with id {run_id!r} to retry") from None
    _check_retryable(run_log, store)
    if definition_of(pipeline)[1] != run_log.definition_hash:
        raise RunConfigurationError(
            f"run {run_id!r} ran a different pipeline (its definition hash differs): a retry "
            "runs the same steps; start a new run instead"
        )
    unfaithful = sorted(k for k, v in run_log.parameters_in.items() if has_repr_marker(v))
    if unfaithful:
        raise RunConfigurationError(
            f"run {run_id!r} cannot be retried: its initial parameters "
            f"{', '.join(map(repr, unfaithful))} were recorded only as their repr"
        )
    catalog = RunCatalog.for_run(
        run_id, configuration.catalog.folder, configuration.run_log_store.folder
    )
    reuse: dict[str, StepLog] = {}
    resume: dict[str, StepLog] = {}
    for step in _all_steps(run_log.steps):
        if step.status is Status.SUCCESS and _restore_outputs(step, catalog):
            reuse[step.path] = step
        else:
            resume[step.path] = step
    use_event_log = configuration.event_log if event_log is None else bool(event_log)
    return PreparedRun(
        pipeline=pipeline,
        run_log=run_log,
        parameters=dict(run_log.parameters_in),
        store=store,
        log_level=log_level_number(log_level),
        attribution=bool(attribution),
        buffer_size=check_buffer_size(buffer_size),
        catalog=catalog,
        event_log=(
            open_event_log(store, configuration.run_log_store.folder, run_id, retry=True)
            if use_event_log
            else None
        ),
        code_identity=configuration.code_identity,
        cancel_warning=configuration.cancel_warning,
        retrying=True,
        reuse=reuse,
        resume=resume,
    )


def _check_retryable(run_log: RunLog, store: RunLogStore) -> None:
    run_id = run_log.run_id
    if run_log.status is Status.SUCCESS:
        raise RunConfigurationError(f"run {run_id!r} succeeded: there is nothing to retry")
    # A run whose process died stays PROCESSING; it is retryable once the store says its
    # writer is gone. A store that cannot tell (None) may have it still going.
    if run_log.status is Status.PROCESSING and store.alive(run_id) is not False:
        raise RunConfigurationError(f"run {run_id!r} is still going: wait for it to end")


def _all_steps(steps: Mapping[str, StepLog]) -> Iterator[StepLog]:
    for step in steps.values():
        yield step
        for branch in step.branches.values():
            yield from _all_steps(branch.steps)


def _restore_outputs(step: StepLog, catalog: RunCatalog) -> bool:
    """Load ``pickled`` outputs from the catalog; whether every output is now faithful."""
    restored: dict[str, Any] = {}
    for entry in step.catalog:
        name = entry.parameter
        if (
            entry.stage == "pickled"
            and name is not None
            and has_repr_marker(step.assigned.get(name))
        ):
            try:
                restored[name] = catalog.load_object(entry)
            except Exception as exc:
                logging.getLogger("runnable_trio").warning(
                    "retry of %s: step %s runs again: %s", catalog.root.name, step.path, exc
                )
                return False
    step.assigned.update(restored)
    return not has_repr_marker(step.assigned)
