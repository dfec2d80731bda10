"""The public surface: the names DESIGN.md fixes, and nothing private leaking."""

from __future__ import annotations

import pytest

import runnable_trio

FIXED_BY_DESIGN = {
    "AsyncPipeline",
    "AsyncPythonTask",
    "Parallel",
    "Map",
    "Conditional",
    "Loop",
    "Stub",
    "Catalog",
    "json",
    "pickled",
    "metric",
    "ExecutionFailedError",
}


def test_design_names_are_exported() -> None:
    assert set(runnable_trio.__all__) >= FIXED_BY_DESIGN


def test_all_is_exactly_the_public_names() -> None:
    public = {name for name in vars(runnable_trio) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(runnable_trio, name)).__name__ == "module"}
    assert set(runnable_trio.__all__) == public - modules
    assert len(set(runnable_trio.__all__)) == len(runnable_trio.__all__)


def test_library_never_imports_asyncio() -> None:
    import pathlib

    package = pathlib.Path(runnable_trio.__file__).parent
    for module in package.glob("*.py"):
        text = module.read_text()
        assert "import asyncio" not in text, module
        assert "trio_asyncio" not in text, module


def test_a_mapping_where_the_configuration_file_goes_says_parameters_is_keyword_only() -> None:
    # execute_streaming's first positional argument is configuration_file, as in the reference.
    async def use(x: int) -> None:
        pass

    pipeline = runnable_trio.AsyncPythonTask("t", use).as_async_pipeline()
    with pytest.raises(runnable_trio.RunConfigurationError) as caught:
        pipeline.execute_streaming({"x": 5})  # type: ignore[arg-type]
    assert str(caught.value) == (
        "execute_streaming(): 'configuration_file' must be a str (got a mapping, {'x': 5}); "
        "parameters are keyword-only: execute_streaming(parameters={...})"
    )
    with pytest.raises(
        runnable_trio.RunConfigurationError, match="'parameters_file' must be a str"
    ):
        pipeline.execute_streaming("", "", "", {"x": 5})  # type: ignore[arg-type]
