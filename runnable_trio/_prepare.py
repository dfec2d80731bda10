"""The one prepare path of a run and of a retry: everything that can fail, at the call.

A run's ``RunOptions`` are checked at the call (``RunOptions.check``); here the parameters are
read (the "before its first checkpoint" of the execution contract), the configuration loaded,
the store chosen, the run id made or checked, and a :class:`PreparedRun` assembled.
:func:`prepare_run` starts a new record; ``_rerun.prepare_retry`` reopens a recorded one and
shares :func:`configured` (configuration and store) and :func:`assemble` (the rest) with it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import sniffio

from ._catalog import RunCatalog
from ._config import Configuration, load_configuration
from ._definition import definition_of
from ._errors import RunConfigurationError
from ._eventlog import open_event_log
from ._options import RunOptions
from ._params import load_parameters
from ._run import PreparedRun
from ._runid import new_run_id, validate_run_id
from ._runlog import RunLog, StepLog
from ._store import RunLogStore
from ._stores import store_from_configuration

if TYPE_CHECKING:
    from ._pipeline import AsyncPipeline

__all__ = ["assemble", "catalog_of", "check_called_from_trio", "configured", "prepare_run"]


def check_called_from_trio(call: str, *, started: bool = False) -> None:
    """Refuse to run from asyncio code, saying what to use instead.

    Args:
        call: what was called, for the message (``"execute_streaming()"``).
        started: the run is starting now, so an event loop must be running; at the call
            itself, plain synchronous code (no event loop yet) is accepted.

    Raises:
        RunConfigurationError: the caller is asyncio code (``asyncio.run``, uvicorn, the
            asyncio side of trio-asyncio), or no Trio run is going when the run starts.
    """
    try:
        library: str | None = sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        library = None
    if library == "trio" or (library is None and not started):
        return
    where = f"from {library} code" if library is not None else "outside trio.run()"
    raise RunConfigurationError(
        f"runnable_trio's {call} runs on Trio, but it was called {where}; from asyncio "
        "code (asyncio.run, FastAPI on uvicorn, the asyncio side of trio-asyncio) use the "
        "same pipeline through the compat package: `import runnable` "
        "(runnable.AsyncPipeline, runnable.AsyncPythonTask ...)"
    )


def prepare_run(pipeline: AsyncPipeline, options: RunOptions) -> PreparedRun:
    """A new run of ``pipeline``, checked and read now (synchronously).

    Raises:
        RunConfigurationError: for any unusable argument, before anything runs.
    """
    values = load_parameters(options.parameters, options.parameters_file)
    workdir = os.getcwd()  # read once: the store's folder and the catalog's are taken from it
    configuration, store = configured(options, workdir)
    run_id = validate_run_id(options.run_id) if options.run_id else new_run_id()
    # A generated id is unique per run: no store holds it, so a store whose ``exists`` is
    # only a look-up is not asked (two names not there, on a file store); its create claims
    # the id all the same. Any other store is (PostgreSQL's first contact checks its schema,
    # at the call).
    looks_only = getattr(store, "exists_only_looks", False)
    if (options.run_id or not looks_only) and store.exists(run_id):
        raise RunConfigurationError(f"a run with id {run_id!r} already exists")
    definition, definition_hash = definition_of(pipeline)
    run_log = RunLog(
        run_id=run_id,
        tag=options.tag,
        pipeline_name=pipeline.name,
        parameters_in=dict(values),
        definition=definition,
        definition_hash=definition_hash,
    )
    catalog = catalog_of(configuration, run_id, workdir)
    if options.run_id:
        # A new run's files are created new: nothing may be there yet. (Nothing can be for
        # a generated id, unique per run: no look-up for it.)
        catalog.check_new()
    return assemble(pipeline, options, configuration, store, run_log, values, catalog)


def configured(
    options: RunOptions, workdir: str | None = None
) -> tuple[Configuration, RunLogStore]:
    """The run's configuration, and its store: the one given, else the configured one
    (its folder taken from ``workdir``, the working folder, if given)."""
    configuration = load_configuration(options.configuration_file)
    store = options.store
    if store is None:
        store = store_from_configuration(configuration, workdir)
    return configuration, store


def catalog_of(configuration: Configuration, run_id: str, workdir: str | None = None) -> RunCatalog:
    """The catalog of run ``run_id`` under ``configuration``'s folders (taken from
    ``workdir``, the working folder, if given)."""
    return RunCatalog.for_run(
        run_id,
        configuration.catalog.folder,
        configuration.run_log_store.folder,
        workdir=workdir,
    )


def assemble(
    pipeline: AsyncPipeline,
    options: RunOptions,
    configuration: Configuration,
    store: RunLogStore,
    run_log: RunLog,
    parameters: dict[str, Any],
    catalog: RunCatalog,
    *,
    retry: tuple[Mapping[str, StepLog], Mapping[str, StepLog]] | None = None,
) -> PreparedRun:
    """The prepared run of ``run_log``: its event log and options.

    Args:
        retry: for a retry, the steps to reuse and those to resume (by path); the record is
            then reopened when the run starts, and the catalog and event log go on.
    """
    run_id = run_log.run_id
    use_event_log = configuration.event_log if options.event_log is None else options.event_log
    reuse, resume = retry if retry is not None else ({}, {})
    return PreparedRun(
        pipeline=pipeline,
        run_log=run_log,
        parameters=parameters,
        store=store,
        log_level=options.log_level,
        attribution=options.attribution,
        buffer_size=options.buffer_size,
        catalog=catalog,
        event_log=(
            open_event_log(
                store, configuration.run_log_store.folder, run_id, retry=retry is not None
            )
            if use_event_log
            else None
        ),
        code_identity=configuration.code_identity,
        cancel_warning=configuration.cancel_warning,
        retrying=retry is not None,
        reuse=reuse,
        resume=resume,
    )
