"""``python -m runnable_trio``: the command line."""

import sys

from .cli import main

sys.exit(main(prog_name="python -m runnable_trio"))
