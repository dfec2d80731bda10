"""One measurement, in a fresh process: ``python bench/_child.py IMPL WORKLOAD PARAMS OUT``.

IMPL names a module of ``workloads/`` (``ours``, ``plain_trio``, ``plain_asyncio``,
``reference``, ``compat``), WORKLOAD a key of its ``WORKLOADS`` (``W1``...), PARAMS a JSON object
of keyword arguments, OUT the file the metrics are written to as JSON (``-``: standard output).
Run it by hand under a profiler to see where a workload's time goes::

    python -m cProfile -s cumtime bench/_child.py ours W2 '{"k": 500, "store": "file"}' -
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path


def main(argv: list[str]) -> None:
    impl, workload, params, out = argv[1:5]
    module = importlib.import_module(f"workloads.{impl}")
    metrics = module.WORKLOADS[workload](**json.loads(params))
    text = json.dumps(metrics)
    if out == "-":
        print(text)
    else:
        Path(out).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv)
