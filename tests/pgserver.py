"""A throwaway PostgreSQL 15 server for the tests: started once per session, stopped at its end.

``initdb`` refuses to run as root, so as root the server runs as the ``postgres`` user (its
folder made theirs). It listens on a Unix socket in its own temporary folder only (no TCP
port to collide with anyone else's). Each test gets a database of its own (``pg_dsn``).

Where PostgreSQL cannot start, its tests skip, unless ``RUNNABLE_TRIO_REQUIRE_POSTGRES=1``
(``.ci/run`` sets it): then they fail, so CI never passes with them silently skipped.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

BIN = Path(os.environ.get("RUNNABLE_TRIO_PG_BIN", "/usr/lib/postgresql/15/bin"))
REQUIRED = os.environ.get("RUNNABLE_TRIO_REQUIRE_POSTGRES") == "1"
_numbers = itertools.count(1)


class PostgresServer:
    """A PostgreSQL server in ``folder`` (data in ``folder/data``, socket in ``folder``)."""

    def __init__(self, folder: Path, *, fsync: bool = False) -> None:
        self.folder = folder
        self.data = folder / "data"
        self.fsync = fsync
        self._as_postgres = os.geteuid() == 0

    def dsn(self, dbname: str = "postgres") -> str:
        return f"host={self.folder} port=5432 user=postgres dbname={dbname}"

    def _command(self, *args: str) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *args] if self._as_postgres else list(args)

    def _run(self, *args: str) -> None:
        done = subprocess.run(self._command(*args), capture_output=True, text=True, timeout=120)
        if done.returncode:
            raise RuntimeError(f"{' '.join(args)} failed: {done.stdout}{done.stderr}")

    def init(self) -> None:
        if self._as_postgres:
            shutil.chown(self.folder, "postgres", "postgres")
        self._run(
            str(BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
            "-E", "UTF8", "--no-sync",
        )  # fmt: skip

    def start(self) -> None:
        options = f"-k {self.folder} -c listen_addresses='' -c max_connections=300"
        if not self.fsync:
            options += " -c fsync=off"
        log = self.folder / "server.log"
        self._run(str(BIN / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(log),
                  "-w", "-t", "60", "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run(str(BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def create_database(self) -> str:
        """A new empty database; its DSN."""
        name = f"test_{os.getpid()}_{next(_numbers)}"
        self._run(str(BIN / "psql"), "-h", str(self.folder), "-U", "postgres", "-q",
                  "-c", f"CREATE DATABASE {name}")  # fmt: skip
        return self.dsn(name)


@contextlib.contextmanager
def postgres_server(*, fsync: bool = False) -> Iterator[PostgresServer]:
    """A started server, stopped and deleted afterwards.

    Raises:
        RuntimeError: PostgreSQL cannot be started (not installed, or no ``postgres`` user).
    """
    if not (BIN / "initdb").exists():
        raise RuntimeError(f"no PostgreSQL at {BIN} (Debian package postgresql-15)")
    folder = Path(tempfile.mkdtemp(prefix="rt-pg-"))
    server = PostgresServer(folder, fsync=fsync)
    try:
        server.init()
        server.start()
        try:
            yield server
        finally:
            with contextlib.suppress(RuntimeError):
                server.stop("immediate")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    try:
        context = postgres_server()
        server = context.__enter__()
    except Exception as exc:
        if REQUIRED:
            pytest.fail(f"PostgreSQL is required here but cannot start: {exc}")
        pytest.skip(f"PostgreSQL cannot start: {exc}")
    try:
        yield server
    finally:
        context.__exit__(None, None, None)


@pytest.fixture
def pg_dsn(pg_server: PostgresServer) -> str:
    """The DSN of a fresh database of the session's server."""
    return pg_server.create_database()


@pytest.fixture
def pg_config(pg_dsn: str, tmp_path: Path) -> str:
    """A configuration file naming the PostgreSQL store of a fresh database, event log on."""
    path = tmp_path / "pg.yaml"
    path.write_text(
        f"run_log_store:\n  type: postgres\n  dsn: '{pg_dsn}'\nevent_log: true\n",
        encoding="utf-8",
    )
    return str(path)
