"""The commands (click): each parses its options and hands over to the module doing the job.

Exit status: 0 success, 1 a failed run, 2 a usage error (bad option, a target that does not
import, a run id that does not exist, an unusable configuration), 130 interrupted.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from .._errors import RunConfigurationError
from ._target import TargetError

if TYPE_CHECKING:
    from .._stream import StreamingRun

__all__ = ["cli"]

CONFIG = click.option(
    "--config", "config", default="", metavar="FILE",
    help="Configuration file (run-log store and folders).",
)  # fmt: skip


class Failure(click.ClickException):
    """A usage error with a clear message (exit status 2)."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def usage_errors(function: Any) -> Any:
    """Turn the library's configuration errors and target errors into exit status 2."""
    import functools

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except (RunConfigurationError, TargetError) as exc:
            raise Failure(str(exc)) from exc

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Run pipelines, watch them, and look at their records."""


@cli.command()
@click.argument("target")
@click.option(
    "-p",
    "--parameter",
    "parameters",
    multiple=True,
    metavar="NAME=VALUE",
    help="An initial parameter; VALUE is read as JSON, else taken as a string.",
)
@click.option("--parameters-file", default="", metavar="FILE", help="YAML file of parameters.")
@CONFIG
@click.option("--run-id", default="", help="The run's id (generated when omitted).")
@click.option("--tag", default="", help="Free text recorded with the run.")
@click.option(
    "--events",
    type=click.Choice(["pretty", "jsonl", "none"]),
    default="pretty",
    show_default=True,
    help="pretty: live view on a terminal, a line per lifecycle event elsewhere.",
)
@usage_errors
def run(target: str, parameters: tuple[str, ...], parameters_file: str, config: str,
        run_id: str, tag: str, events: str) -> int:  # fmt: skip
    """Run TARGET (module:attr or path/to/file.py:attr), a pipeline or a function making one."""
    from ._drive import drive
    from ._target import load_target, parse_parameter

    values = dict(parse_parameter(text) for text in parameters)
    pipeline = load_target(target)

    def start() -> StreamingRun:
        # Made inside trio.run: compat's pipelines choose their Trio or asyncio side by the
        # library calling them.
        return pipeline.execute_streaming(
            configuration_file=config,
            run_id=run_id,
            tag=tag,
            parameters_file=parameters_file,
            parameters=values,
            attribution=events != "none",
        )

    return drive(start, pipeline, _mode(events))


@cli.command()
@click.argument("run_id")
@click.argument("target", required=False)
@CONFIG
@click.option(
    "--events", type=click.Choice(["pretty", "jsonl", "none"]), default="pretty", show_default=True
)
@usage_errors
def retry(run_id: str, target: str | None, config: str, events: str) -> int:
    """Re-run what failed in run RUN_ID (its pipeline from TARGET, or found again)."""
    from .._rerun import retry_streaming
    from ._drive import drive
    from ._find import find_pipeline
    from ._stores import load_run, open_store
    from ._target import load_target

    if target:
        pipeline = load_target(target)
    else:
        pipeline = find_pipeline(load_run(open_store(config), run_id))
    return drive(
        lambda: retry_streaming(
            pipeline, run_id, configuration_file=config, attribution=events != "none"
        ),
        pipeline,
        _mode(events),
    )


def _mode(events: str) -> str:
    if events == "pretty":
        return "live" if sys.stdout.isatty() else "plain"
    return events


@cli.command()
@click.option("--status", type=click.Choice(["PROCESSING", "SUCCESS", "FAIL", "CANCELLED"],
                                            case_sensitive=False))  # fmt: skip
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most N runs.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@CONFIG
@usage_errors
def runs(status: str | None, limit: int | None, as_json: bool, config: str) -> int:
    """The recorded runs, newest first (dead runs marked)."""
    from ._records import print_runs

    return print_runs(config, status.upper() if status else None, limit, as_json)


@cli.command()
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print the record as JSON.")
@CONFIG
@usage_errors
def show(run_id: str, as_json: bool, config: str) -> int:
    """One run's record as a tree."""
    from ._records import print_run

    return print_run(config, run_id, as_json)


@cli.command()
@click.argument("run_id")
@click.option("--output", default=None, metavar="FILE.html", help="Write an HTML timeline.")
@click.option("--console/--no-console", default=True, help="Show it in the terminal.")
@CONFIG
@usage_errors
def timeline(run_id: str, output: str | None, console: bool, config: str) -> int:
    """The run's timeline: a bar per step and branch on one time axis."""
    from ._timeline import timeline_command

    return timeline_command(config, run_id, output, console)


@cli.command()
@click.argument("run_id")
@click.option("--after", type=click.IntRange(min=0), default=0, help="Events after number SEQ.")
@click.option("--follow", is_flag=True, help="Wait for the events of a run still going.")
@CONFIG
@usage_errors
def replay(run_id: str, after: int, follow: bool, config: str) -> int:
    """A run's recorded events, as JSON lines."""
    from ._replaycmd import replay_command

    return replay_command(config, run_id, after, follow)


@cli.command()
@click.argument("target")
@click.option("--format", "format_", type=click.Choice(["mermaid"]), default="mermaid")
@CONFIG
@usage_errors
def graph(target: str, format_: str, config: str) -> int:
    """TARGET's pipeline as a Mermaid flowchart."""
    from ._target import load_target

    click.echo(load_target(target).to_mermaid(), nl=False)
    return 0
