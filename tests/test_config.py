"""The configuration file: store type and folders, event log, errors naming the setting."""

from __future__ import annotations

import os
from pathlib import Path

import attrs
import pytest

from runnable_trio import (
    AsyncPythonTask,
    Catalog,
    MemoryRunLogStore,
    RunConfigurationError,
    _stores,
)
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


def test_a_file_store_is_made_once_per_folder_and_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A cache of its own: the process's is bounded and emptied when full, which the stores
    # earlier tests made could make happen in the middle of this one.
    monkeypatch.setattr(_stores, "_file_stores", {})
    configuration = load_configuration("")
    store = store_from_configuration(configuration)
    assert store_from_configuration(configuration) is store  # shared by the runs here
    assert store_from_configuration(configuration, os.getcwd()) is store
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    other = store_from_configuration(configuration)
    assert isinstance(other, FileRunLogStore)
    assert other.folder == tmp_path / "elsewhere" / ".run_log_store"
    assert store_from_configuration(configuration, str(tmp_path)) is store
    named = store_from_configuration(load_configuration(configure("run_log_store:\n  folder: x\n")))
    assert isinstance(named, FileRunLogStore)
    assert named.folder == tmp_path / "elsewhere" / "x"


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
            "'run_log_store.type' must be 'file' or 'memory' or 'postgres' (got 'disk')",
        ),
        ("run_log_store:\n  folder: ''\n", "'folder' must be a non-empty folder path"),
        ("event_log: maybe\n", "'event_log' must be true or false (got 'maybe')"),
        ("bogus: 1\n", "unknown setting 'bogus' (settings here: run_log_store, catalog,"),
        ("- 1\n", "must hold a mapping of settings (got list)"),
        ("a: [\n", "configuration_file 'conf.yaml' is not YAML"),
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


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("event_log: 'yes'\n", "'event_log' must be true or false (got 'yes')"),
        ("event_log: 1\n", "'event_log' must be true or false (got 1)"),
        ("code_identity: 'false'\n", "'code_identity' must be true or false (got 'false')"),
        ("catalog: {folder: 3}\n", "'catalog.folder' must be a str (got 3)"),
        ("run_log_store: {folder: [a]}\n", "'run_log_store.folder' must be a str (got ['a'])"),
        (
            "run_log_store: {type: 3}\n",
            "'run_log_store.type' must be 'file' or 'memory' or 'postgres' (got 3)",
        ),
        ("catalog: .catalog\n", "'catalog' must be a mapping of settings (got '.catalog')"),
        ("cancel_warning: '5'\n", "'cancel_warning' must be a finite number (got '5')"),
        ("cancel_warning: .inf\n", "'cancel_warning' must be a finite number (got inf)"),
        (f"cancel_warning: {10**400}\n", "'cancel_warning' must be a finite number (got 1000"),
        (
            "run_log_store: {type: file, colder: x}\n",
            "unknown setting 'run_log_store.colder' (settings here: type, folder, dsn, dsn_env,",
        ),
    ],
)
def test_settings_are_checked_not_coerced(text: str, message: str) -> None:
    path = configure(text)
    with pytest.raises(RunConfigurationError) as caught:
        AsyncPythonTask("t", ok).as_async_pipeline().execute_streaming(configuration_file=path)
    assert f"configuration_file 'conf.yaml': {message}" in str(caught.value)
    assert not exists("3")


def test_every_bad_setting_is_named_at_once() -> None:
    path = configure("event_log: 'yes'\ncatalog: {folder: 3}\n")
    with pytest.raises(RunConfigurationError) as caught:
        load_configuration(path)
    assert "'event_log' must be true or false" in str(caught.value)
    assert "'catalog.folder' must be a str" in str(caught.value)


def test_a_yaml_bool_is_a_bool() -> None:
    # Unquoted, YAML reads these as booleans: only the quoted text is refused.
    configuration = load_configuration(configure("event_log: yes\ncode_identity: off\n"))
    assert (configuration.event_log, configuration.code_identity) == (True, False)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    # Opening a FIFO for reading blocks until a writer comes: the call must not open it.
    fifo = tmp_path / "conf.fifo"
    os.mkfifo(fifo)
    with pytest.raises(
        RunConfigurationError, match=r"configuration_file '.*conf\.fifo' must be a regular file"
    ) as caught:
        AsyncPythonTask("t", ok).as_async_pipeline().execute_streaming(str(fifo))
    assert "(got a FIFO)" in str(caught.value)


def test_a_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RunConfigurationError, match=r"must be a regular file \(got a folder\)"):
        load_configuration(str(tmp_path))


def test_a_configuration_file_that_is_not_a_path() -> None:
    with pytest.raises(RunConfigurationError, match=r"'configuration_file' must be a path"):
        load_configuration(3)  # type: ignore[arg-type]


def test_parameters_given_by_position_on_any_surface_say_parameters_is_keyword_only() -> None:
    # The same check serves the compat layer, which reads the configuration itself.
    with pytest.raises(RunConfigurationError) as caught:
        load_configuration({"x": 5})  # type: ignore[arg-type]
    assert str(caught.value) == (
        "'configuration_file' must be a path (str or os.PathLike) (got {'x': 5}); "
        "parameters are keyword-only: parameters={...}"
    )


def test_an_unchanged_file_is_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import runnable_trio._config as config_module

    parsed: list[str] = []
    real = config_module.load_yaml
    monkeypatch.setattr(config_module, "load_yaml", lambda text: parsed.append(text) or real(text))
    path = configure("run_log_store:\n  type: memory\n  folder: parsed-once\n")
    first = load_configuration(path)
    assert load_configuration(path) is first
    assert len(parsed) == 1
    # Rewritten at once with the same size: times may not move within a tick, the text does.
    configure("run_log_store:\n  type: memory\n  folder: parsed-twic\n")
    assert load_configuration(path).run_log_store.folder == "parsed-twic"
    assert len(parsed) == 2


def test_an_old_unchanged_file_is_not_read_again(monkeypatch: pytest.MonkeyPatch) -> None:
    import runnable_trio._config as config_module

    path = configure("run_log_store:\n  type: memory\n  folder: read-once\n")
    reads: list[str] = []
    real = config_module.read_regular_file
    monkeypatch.setattr(
        config_module, "read_regular_file", lambda p, what: reads.append(p) or real(p, what)
    )
    monkeypatch.setattr(config_module, "_RACY_NS", 0)  # as if both times were long past
    assert load_configuration(path).run_log_store.folder == "read-once"
    assert load_configuration(path).run_log_store.folder == "read-once"
    assert reads == [path]
    Path(path).write_text("run_log_store:\n  type: memory\n  folder: read-twice\n", "utf-8")
    assert load_configuration(path).run_log_store.folder == "read-twice"
    assert reads == [path, path]


def _as_long_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    # Take the identity-only path: as if both file times were long past, so nothing but
    # the file's identity tells a change.
    import runnable_trio._config as config_module

    monkeypatch.setattr(config_module, "_RACY_NS", 0)


async def test_an_edit_between_two_runs_is_seen_even_keeping_size_and_mtime(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _as_long_unchanged(monkeypatch)

    def produce() -> str:
        Path("out.txt").write_text("x")
        return "done"

    pipeline = AsyncPythonTask("t", produce, catalog=Catalog(put=["out.txt"])).as_async_pipeline()
    path = configure("run_log_store:\n  type: memory\ncatalog:\n  folder: files-a\n")
    await collect(pipeline, configuration_file=path, run_id="r1")
    before = os.stat(path)
    # The same size, written in place, and the modification time put back as it was.
    configure("run_log_store:\n  type: memory\ncatalog:\n  folder: files-b\n")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(path)
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        before.st_ino,
        before.st_size,
        before.st_mtime_ns,
    )
    await collect(pipeline, configuration_file=path, run_id="r2")
    assert exists("files-a/r1/out.txt")
    assert exists("files-b/r2/out.txt")
    assert not exists("files-a/r2")


def test_a_file_replaced_by_another_is_seen(monkeypatch: pytest.MonkeyPatch) -> None:
    _as_long_unchanged(monkeypatch)
    path = configure("run_log_store:\n  type: memory\n  folder: replaced-1\n")
    assert load_configuration(path).run_log_store.folder == "replaced-1"
    before = os.stat(path)
    Path("new.yaml").write_text("run_log_store:\n  type: memory\n  folder: replaced-2\n")
    os.utime("new.yaml", ns=(before.st_atime_ns, before.st_mtime_ns))
    os.replace("new.yaml", path)  # a new inode, same size and modification time
    after = os.stat(path)
    assert after.st_ino != before.st_ino
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert load_configuration(path).run_log_store.folder == "replaced-2"


def test_the_same_name_in_another_working_folder_is_another_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _as_long_unchanged(monkeypatch)
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "conf.yaml").write_text(f"catalog:\n  folder: files-{name}\n")
    monkeypatch.chdir(tmp_path / "one")
    assert load_configuration("conf.yaml").catalog.folder == "files-one"
    monkeypatch.chdir(tmp_path / "two")
    assert load_configuration("conf.yaml").catalog.folder == "files-two"


def _immutable(value: object) -> bool:
    if attrs.has(type(value)):
        return type(value).__setattr__ is not object.__setattr__ and all(
            _immutable(getattr(value, field.name)) for field in attrs.fields(type(value))
        )
    return isinstance(value, str | bool | int | float | type(None))


def test_a_cached_configuration_cannot_be_changed_by_a_caller() -> None:
    path = configure("run_log_store:\n  type: memory\n  folder: kept\ncatalog:\n  folder: f\n")
    first = load_configuration(path)
    # Every value reachable from it is immutable: nothing a caller holds can be changed.
    assert _immutable(first)
    assert _immutable(Configuration())
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        first.event_log = True  # type: ignore[misc]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        first.run_log_store.folder = "elsewhere"  # type: ignore[misc]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        first.catalog.folder = "elsewhere"  # type: ignore[misc]
    changed = attrs.evolve(first, catalog=attrs.evolve(first.catalog, folder="elsewhere"))
    assert changed.catalog.folder == "elsewhere"
    again = load_configuration(path)
    assert (again.run_log_store.folder, again.catalog.folder) == ("kept", "f")
