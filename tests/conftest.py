"""Shared fixtures."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Runs write .run_log_store/ and .catalog/ in the working folder: keep each test's own.
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def _kept_minutes(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests write fixed times (year 1, 2026-03-01...), which take the places of the minutes
    # _jsontext keeps, the current one's too: put back after each test, so that no test's
    # steps write their times without the kept minute because of an earlier test (the calls
    # counted in tests/test_item_calls.py).
    from runnable_trio import _jsontext

    monkeypatch.setattr(_jsontext, "_minute", _jsontext._minute)
    monkeypatch.setattr(_jsontext, "_before", _jsontext._before)


# The throwaway PostgreSQL server of the PostgreSQL store's tests (started only if used).
from tests.pgserver import pg_config, pg_dsn, pg_server  # noqa: E402, F401
