"""The command line: ``runnable-trio`` (and ``runnable`` from compat), ``python -m runnable_trio``.

Nothing here is imported by ``import runnable_trio``: click and rich load only when a command
runs. One module per job:

    _app        the commands and their options (click)
    _target     TARGET and -p NAME=VALUE
    _stores     the configuration's store, its runs, a run's record
    _drive      a run to its end, its output, its exit status (Ctrl-C: 130)
    _progress   snapshots of a running run; _live renders them (rich)
    _text       events and times as text
    _records    ``runs`` and ``show``
    _timeline   ``timeline`` in the terminal; _timeline_html the HTML file
    _replaycmd  ``replay``
    _find       the pipeline of a recorded run, found again for ``retry``
"""

from __future__ import annotations

import sys

__all__ = ["main", "main_runnable"]


def main(argv: list[str] | None = None, prog_name: str = "runnable-trio") -> int:
    """Run one command; returns its exit status."""
    import click

    from ._app import cli

    try:
        result = cli.main(args=argv, prog_name=prog_name, standalone_mode=False)
    except click.exceptions.Exit as exc:  # --help
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.Abort:
        print("interrupted", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return result if isinstance(result, int) else 0


def run_main() -> None:
    """The ``runnable-trio`` console script."""
    sys.exit(main())


def main_runnable() -> None:
    """The ``runnable`` console script (compat): the same commands."""
    sys.exit(main(prog_name="runnable"))
