"""Shared fixtures."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Runs write .run_log_store/ and .catalog/ in the working folder: keep each test's own.
    monkeypatch.chdir(tmp_path)


# The throwaway PostgreSQL server of the PostgreSQL store's tests (started only if used).
from tests.pgserver import pg_config, pg_dsn, pg_server  # noqa: E402, F401
