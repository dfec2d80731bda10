"""The step and pipeline classes, where the reference's ``runnable.sdk`` has them."""

from __future__ import annotations

from runnable_trio import Catalog as Catalog
from runnable_trio import json as json
from runnable_trio import metric as metric
from runnable_trio import pickled as pickled

from ._pipeline import AsyncPipeline as AsyncPipeline
from ._steps import Conditional as Conditional
from ._steps import Loop as Loop
from ._steps import Map as Map
from ._steps import Parallel as Parallel
from ._steps import Stub as Stub
from ._task import AsyncPythonTask as AsyncPythonTask

__all__ = [
    "AsyncPipeline",
    "AsyncPythonTask",
    "Catalog",
    "Conditional",
    "Loop",
    "Map",
    "Parallel",
    "Stub",
    "json",
    "metric",
    "pickled",
]
