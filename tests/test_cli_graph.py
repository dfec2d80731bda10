"""``graph`` and ``AsyncPipeline.to_mermaid()``: a Mermaid flowchart, checked by mermaid itself
(the npm package, in headless Chromium) and by a parse of the lines it emits."""

from __future__ import annotations

import html
import json
import os
import re
import sys
from pathlib import Path

import pytest

from runnable_trio import AsyncPipeline, AsyncPythonTask, Stub

from .cli_support import chromium_dom, cli, mermaid_js, write_targets

NODE = re.compile(r'^(?P<id>[A-Za-z][\w]*)(\[|\(\[|\(\(\()"(?P<label>[^"]*)"(\]|\]\)|\)\)\))$')
SUBGRAPH = re.compile(r'^subgraph (?P<id>g\d+)\["(?P<label>[^"]*)"\]$')
EDGE = re.compile(r'^(?P<a>\w+) (-->|-\. "[^"]*" \.->|-- "[^"]*" -->) (?P<b>\w+)$')


def _nested() -> AsyncPipeline:
    sys.path.insert(0, str(Path.cwd()))
    write_targets(Path.cwd())
    import targets

    try:
        return targets.nested()
    finally:
        sys.modules.pop("targets", None)
        sys.path.remove(str(Path.cwd()))


def parse(text: str) -> tuple[dict[str, str], dict[str, str], list[tuple[str, str]]]:
    """Nodes and subgraphs by id (their labels) and the edges; fails on any other line."""
    lines = text.splitlines()
    assert lines[0] == "flowchart TD"
    nodes: dict[str, str] = {}
    groups: dict[str, str] = {}
    edges: list[tuple[str, str]] = []
    depth = 0
    for line in lines[1:]:
        line = line.strip()
        if m := SUBGRAPH.match(line):
            groups[m["id"]] = html.unescape(m["label"].replace("#", "&"))
            depth += 1
        elif line == "end":
            depth -= 1
            assert depth >= 0
        elif m := NODE.match(line):
            nodes[m["id"]] = html.unescape(m["label"].replace("#", "&"))
        elif m := EDGE.match(line):
            edges.append((m["a"], m["b"]))
        else:
            assert line == "direction TB" or line.startswith(("classDef ", "class ")), line
    assert depth == 0
    for a, b in edges:
        assert a in nodes or a in groups or a == "start", a
        assert b in nodes or b in groups or b in ("done",), b
    return nodes, groups, edges


def test_to_mermaid_draws_every_kind_of_step(tmp_path: Path) -> None:
    text = _nested().to_mermaid()
    nodes, groups, edges = parse(text)
    labels = set(nodes.values())
    assert {"double", "pick", "noop (stub)", "cut", "nothing (stub)", "risky", "recover (stub)",
            "finish (stub)", "nested", "success"} <= labels  # fmt: skip
    titles = set(groups.values())
    assert {"each (map over items as v)", "each v", "both (parallel)", "left", "right",
            "route (conditional on size)", "size == big", "size == small",
            "refine (loop: at most 3, until stop)", "iteration i",
            "risky: on failure"} <= titles  # fmt: skip
    by_label = {label: node for node, label in nodes.items()}
    group = {label: g for g, label in groups.items()}
    # The flow: start, the map, the parallel, the conditional, risky, finish, terminate.
    assert ("start", group["each (map over items as v)"]) in edges
    assert (group["each (map over items as v)"], group["both (parallel)"]) in edges
    assert (by_label["risky"], by_label["recover (stub)"]) in edges  # on_failure
    assert (by_label["finish (stub)"], by_label["success"]) in edges  # terminate
    assert '-. "on failure" .->' in text
    assert "done" not in text  # the last step terminates: no plain end
    simple, _, simple_edges = parse(AsyncPipeline([Stub("a"), Stub("b")]).to_mermaid())
    assert [simple.get(a, a) for a, _ in simple_edges][-1] == "b (stub)"
    assert simple_edges[-1][1] == "done"
    assert simple["done"] == "end"


def test_labels_are_escaped() -> None:
    pipeline = AsyncPipeline([Stub('say "hi" <b>&')], name="quote")
    nodes, _, _ = parse(pipeline.to_mermaid())
    assert 'say "hi" <b>& (stub)' in nodes.values()
    assert 'n1["say #quot;hi#quot; #lt;b#gt;#amp; (stub)"]' in pipeline.to_mermaid()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_graph_prints_the_same_text(tmp_path: Path) -> None:
    write_targets(tmp_path)
    done = cli(tmp_path, "graph", "targets:nested", check=0)
    assert done.stdout == _nested().to_mermaid()
    assert cli(tmp_path, "graph", "targets:nope", check=2).stderr.startswith("error: ")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_mermaid_renders_it_in_a_browser(tmp_path: Path) -> None:
    script = mermaid_js()
    simple = AsyncPipeline([AsyncPythonTask("only", _noop)], name="simple")
    charts = {"nested": _nested().to_mermaid(), "simple": simple.to_mermaid()}
    page = tmp_path / "render.html"
    page.write_text(
        f"""<!DOCTYPE html><html><body><pre id="out">pending</pre>
<script src="{script.as_uri()}"></script>
<script>
const charts = {json.dumps(charts)};
mermaid.initialize({{startOnLoad: false}});
(async () => {{
  const results = {{}};
  for (const [name, text] of Object.entries(charts)) {{
    try {{
      await mermaid.parse(text);
      const {{svg}} = await mermaid.render("chart_" + name, text);
      const box = document.createElement("div");
      box.id = "svg_" + name;
      box.innerHTML = svg;
      document.body.appendChild(box);
      results[name] = "ok " + box.querySelectorAll("g.node").length;
    }} catch (e) {{
      results[name] = "error " + e;
    }}
  }}
  document.getElementById("out").textContent = JSON.stringify(results);
}})();
</script></body></html>""",
        encoding="utf-8",
    )
    dom = chromium_dom(page, Path(os.environ.get("RUNNABLE_TRIO_SHOTS", tmp_path)) / "graph.png")
    found = re.search(r'<pre id="out">(.*?)</pre>', dom)
    assert found, dom[:2000]
    results = json.loads(html.unescape(found[1]))
    nodes, _, _ = parse(charts["nested"])
    assert results == {"nested": f"ok {len(nodes)}", "simple": "ok 3"}  # start, only, end
    for label in ("double", "recover (stub)", "refine (loop: at most 3, until stop)"):
        assert html.escape(label, quote=False) in dom


async def _noop() -> None:
    pass
