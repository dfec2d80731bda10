"""The configuration file: store type and folders, event log, errors naming the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from runnable_trio import AsyncPythonTask, Catalog, MemoryRunLogStore, RunConfigurationError
from runnable_trio._config import Configuration, load_configuration
from runnable_trio._filestore import FileRunLogStore
from runnable_trio._stores import store_from_configuration

from .helpers import collect


async def ok() -> str:
    return "fine"


def configure(text: str) -> str:
    Path("conf.yaml").write_text(text, encoding="utf-8")
    return "conf.yaml"


def exists(path: str) -> bool:
    return Path(path).exists()


def test_defaults_are_the_file_store_in_dot_folders() -> None:
    configuration = load_configuration("")
    assert configuration == Configuration()
    store = store_from_configuration(configuration)
    assert isinstance(store, FileRunLogStore)
    assert store.folder == Path.cwd() / ".run_log_store"
    assert configuration.catalog.folder == ".catalog"
    assert (configuration.event_log, configuration.code_identity) == (False, True)


async def test_folders_and_event_log_come_from_the_file() -> None:
    path = configure(
        "run_log_store:\n  type: file\n  folder: logs\ncatalog:\n  folder: files\n"
        "event_log: true\ncode_identity: false\n"
    )

    def produce() -> str:
        Path("out.txt").write_text("x")
        return "done"

    task = AsyncPythonTask("t", produce, catalog=Catalog(put=["out.txt"]))
    await collect(task.as_async_pipeline(), configuration_file=path, run_id="r1")
    assert exists("logs/r1.json")
    assert exists("logs/r1.events.jsonl")
    assert exists("files/r1/out.txt")
    assert not exists(".run_log_store")
    assert FileRunLogStore("logs").load("r1").code is None


async def test_memory_store_from_the_file() -> None:
    path = configure("run_log_store:\n  type: memory\n")
    assert isinstance(store_from_configuration(load_configuration(path)), MemoryRunLogStore)
    await collect(AsyncPythonTask("t", ok).as_async_pipeline(), configuration_file=path)
    assert not exists(".run_log_store")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "run_log_store:\n  type: disk\n",
            "must be 'file' or 'memory' or 'postgres' @ configuration.run_log_store.type",
        ),
        ("run_log_store:\n  folder: ''\n", "'folder' must be a non-empty folder path"),
        ("event_log: maybe\n", "'maybe' is not a boolean @ configuration.event_log"),
        ("bogus: 1\n", "extra fields found (bogus) @ configuration"),
        ("- 1\n", "must hold a mapping of settings (got list)"),
        ("a: [\n", "cannot read configuration_file"),
    ],
)
def test_bad_settings_are_named(text: str, message: str) -> None:
    path = configure(text)
    with pytest.raises(RunConfigurationError) as caught:
        AsyncPythonTask("t", ok).as_async_pipeline().execute_streaming(configuration_file=path)
    assert message in str(caught.value)


def test_a_missing_file_is_named() -> None:
    with pytest.raises(RunConfigurationError, match=r"cannot read configuration_file 'nope\.yaml'"):
        load_configuration("nope.yaml")
