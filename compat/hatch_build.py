"""Metadata hook: compat's dependencies, with runnable_trio required from this repository.

runnable_trio is on no package index, so ``pip install ./compat`` could not find it by name.
A regular wheel (``compat_build.STANDARD``) requires ``runnable_trio @ file://<the folder
above>``, so pip builds and installs both. An editable wheel requires it by name only:
``pip install -e . -e ./compat`` installs runnable_trio (editable) in the same command, and a
second, non-editable reference to the same folder would conflict with it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import compat_build
from hatchling.metadata.plugin.interface import MetadataHookInterface

DEPENDENCIES = ["trio>=0.30", "trio-asyncio>=0.15", "sniffio>=1.3"]


class CompatDependencies(MetadataHookInterface):
    PLUGIN_NAME = "custom"

    def update(self, metadata: dict[str, Any]) -> None:
        metadata["dependencies"] = [self._runnable_trio(), *DEPENDENCIES]

    def _runnable_trio(self) -> str:
        if not compat_build.STANDARD:
            return "runnable_trio"
        root = Path(self.root).resolve().parent
        if not (root / "runnable_trio" / "__init__.py").is_file():
            raise RuntimeError(
                f"runnable-trio-compat: no runnable_trio project in {root}; this folder must "
                "stay inside the runnable_trio repository (install with "
                "`pip install <repository> <repository>/compat`)"
            )
        return f"runnable_trio @ {root.as_uri()}"
