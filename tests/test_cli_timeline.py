"""``timeline``: the terminal view, and the HTML file drawn by a real headless Chromium."""

from __future__ import annotations

import os
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from runnable_trio import read_run_log
from runnable_trio.cli._timeline import bars_of

from .cli_support import chromium_dom, cli, write_targets

# Each test starts several interpreters: on a loaded machine that takes a while.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture
def nested_run(tmp_path: Path) -> Path:
    write_targets(tmp_path)
    cli(tmp_path, "run", "targets:nested", "-p", "items=[1, 2, 3]", "--run-id", "n", check=0)
    return tmp_path


def _all_paths(folder: Path) -> set[str]:
    bars, _ = bars_of(read_run_log("n"))
    return {bar.path for bar in bars}


def test_timeline_in_the_terminal_draws_a_bar_per_step_and_branch(nested_run: Path) -> None:
    out = cli(nested_run, "timeline", "n", env={"COLUMNS": "160"}, check=0).stdout
    lines = out.splitlines()
    assert lines[0].startswith("run n  SUCCESS")
    labels = [line.split()[0] for line in lines[2:]]
    for label in ("each", "[0]", "[2]", "double", "both", "[left]", "pick", "route", "[big]",
                  "refine", "cut", "risky", "[%on_failure]", "recover"):  # fmt: skip
        assert label in labels, label
    assert all("█" in line or "▒" in line for line in lines[2:])


class _Rows(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[str] = []
        self.bars: list[str] = []
        self.drawn = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        classes = (found.get("class") or "").split()
        if "row" in classes:
            self.rows.append(found["data-path"] or "")
        if "bar" in classes:
            self.bars.append(found["data-path"] or "")
        if tag == "body":
            self.drawn = found.get("data-drawn") or ""


def test_the_html_timeline_draws_every_step_in_a_browser(nested_run: Path) -> None:
    page = nested_run / "timeline.html"
    done = cli(nested_run, "timeline", "n", "--output", str(page), "--no-console", check=0)
    assert done.stdout.strip() == f"timeline written to {page}"
    text = page.read_text(encoding="utf-8")
    # Self-contained: nothing is fetched.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    assert "<script src" not in text
    assert "<link" not in text
    screenshot = Path(os.environ.get("RUNNABLE_TRIO_SHOTS", nested_run)) / "timeline.png"
    dom = chromium_dom(page, screenshot)
    parsed = _Rows()
    parsed.feed(dom)
    expected = _all_paths(nested_run)
    assert "each.0.double" in expected
    assert "risky.%on_failure.recover" in expected
    assert set(parsed.rows) == expected  # the script drew a row per step and branch
    assert set(parsed.bars) == expected  # and a bar on each (every one of them ran)
    assert parsed.drawn == str(len(expected))
    assert screenshot.stat().st_size > 5000


def test_the_html_escapes_what_the_run_recorded(tmp_path: Path) -> None:
    write_targets(tmp_path)
    cli(tmp_path, "run", "targets:failing", "-p", "v=1", "-p", 'x="</script><b>x"',
        "--run-id", "e", check=1)  # fmt: skip
    page = tmp_path / "e.html"
    cli(tmp_path, "timeline", "e", "--output", str(page), "--no-console", check=0)
    dom = chromium_dom(page)
    tags: list[str] = []
    parser = HTMLParser()
    parser.handle_starttag = lambda tag, attrs: tags.append(tag)  # type: ignore[method-assign]
    parser.feed(dom)
    assert "b" not in tags  # the error text stayed text (script content is not markup)
    assert "&lt;/script&gt;&lt;b&gt;x" in dom
