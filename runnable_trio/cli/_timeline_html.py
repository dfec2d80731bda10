"""The timeline as one self-contained HTML file: styles, script and data inline, no network.

The page draws a Gantt-style chart from the JSON embedded in it: a row per step and branch,
indented as the tree is, a bar per attempt coloured by status, a tooltip with times, attempts
and the error; a composite's row folds its branches away on a click.
"""

from __future__ import annotations

import html
import json
from typing import Any

from .._runlog import RunLog
from ._timeline import Bar, bars_of

__all__ = ["timeline_html"]


def timeline_html(run_log: RunLog) -> str:
    bars, total = bars_of(run_log)
    data = {
        "run_id": run_log.run_id,
        "pipeline": run_log.pipeline_name,
        "status": run_log.status.value,
        "started_at": run_log.started_at.isoformat(),
        "total": total,
        "step": run_log.step,
        "error": f"{run_log.error_type}: {run_log.error_message}" if run_log.error_type else None,
        "bars": [_bar(bar) for bar in bars],
    }
    # "</" must not end the script element early.
    payload = json.dumps(data, ensure_ascii=False).replace("</", "<\\/")
    title = html.escape(f"run {run_log.run_id} — timeline")
    return (
        _PAGE.replace("@TITLE@", title)
        .replace("@STYLE@", _STYLE)
        .replace("@SCRIPT@", _SCRIPT)
        .replace("@DATA@", payload)
    )


def _bar(bar: Bar) -> dict[str, Any]:
    return {
        "path": bar.path,
        "label": bar.label,
        "depth": bar.depth,
        "kind": bar.kind,
        "status": bar.status.value,
        "start": bar.start,
        "end": bar.end,
        "error": bar.error,
        "spans": [
            {"n": s.number, "start": s.start, "end": s.end, "status": s.status.value,
             "error": s.error}
            for s in bar.spans
        ],
    }  # fmt: skip


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>@TITLE@</title>
<style>@STYLE@</style>
</head>
<body>
<header id="head"></header>
<main id="chart"></main>
<div id="tip" role="tooltip"></div>
<script type="application/json" id="timeline-data">@DATA@</script>
<script>@SCRIPT@</script>
</body>
</html>
"""

_STYLE = """
body { font: 13px/1.4 system-ui, sans-serif; margin: 16px; color: #1d2330; background: #fff; }
header h1 { font-size: 17px; margin: 0 0 4px; }
header .meta { color: #5a6372; margin-bottom: 12px; }
.status { font-weight: 600; }
.SUCCESS { --c: #2e9d57; } .FAIL { --c: #d43c3c; } .PROCESSING { --c: #d9a21b; }
.CANCELLED { --c: #9a5bc4; }
.status { color: var(--c); }
.row { display: flex; align-items: center; height: 24px; border-bottom: 1px solid #eef0f4; }
.row:hover { background: #f6f8fb; }
.label { width: 300px; flex: none; white-space: nowrap; overflow: hidden;
         text-overflow: ellipsis; cursor: default; }
.label .kind { color: #8a93a3; font-size: 11px; margin-left: 6px; }
.label.fold { cursor: pointer; }
.label.fold::before { content: "▾ "; color: #8a93a3; }
.label.fold.closed::before { content: "▸ "; }
.track { position: relative; flex: 1; height: 16px; }
.bar { position: absolute; top: 2px; height: 12px; min-width: 2px; border-radius: 3px;
       background: var(--c); }
.bar.branch { opacity: 0.35; top: 4px; height: 8px; }
.bar.retried { opacity: 0.55; }
.axis { display: flex; margin-left: 300px; color: #8a93a3; font-size: 11px;
        position: relative; height: 16px; }
.axis span { position: absolute; transform: translateX(-50%); }
.hidden { display: none; }
#tip { position: fixed; pointer-events: none; background: #1d2330; color: #fff;
       padding: 6px 8px; border-radius: 4px; font-size: 12px; white-space: pre;
       display: none; z-index: 10; max-width: 520px; }
"""

_SCRIPT = r"""
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("timeline-data").textContent);
  const total = data.total > 0 ? data.total : 1;
  const fmt = (s) => s == null ? "-" : s < 1 ? (s * 1000).toFixed(1) + " ms" : s.toFixed(3) + " s";
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  };
  const head = document.getElementById("head");
  head.appendChild(el("h1", null, "run " + data.run_id));
  const meta = el("div", "meta");
  meta.appendChild(el("span", "status " + data.status, data.status));
  meta.appendChild(document.createTextNode(
    "  " + (data.pipeline || "(unnamed pipeline)") + "  " + fmt(data.total) +
    "  started " + data.started_at +
    (data.error ? "  failed at " + (data.step || "?") + ": " + data.error : "")));
  head.appendChild(meta);

  const chart = document.getElementById("chart");
  const axis = el("div", "axis");
  for (let i = 0; i <= 4; i++) {
    const t = el("span", null, fmt(total * i / 4));
    t.style.left = (i * 25) + "%";
    if (i === 4) t.style.transform = "translateX(-100%)";
    axis.appendChild(t);
  }
  chart.appendChild(axis);
  const tip = document.getElementById("tip");
  const rows = [];
  data.bars.forEach((bar, index) => {
    const row = el("div", "row " + bar.status);
    row.dataset.path = bar.path;
    row.dataset.depth = bar.depth;
    const label = el("div", "label");
    label.style.paddingLeft = (bar.depth * 14) + "px";
    label.appendChild(document.createTextNode(bar.label));
    label.appendChild(el("span", "kind", bar.kind === "branch" ? "" : bar.kind));
    row.appendChild(label);
    const track = el("div", "track");
    const spans = bar.spans.length ? bar.spans :
      (bar.start == null ? [] : [{n: 0, start: bar.start, end: bar.end, status: bar.status}]);
    spans.forEach((span, i) => {
      const b = el("div", "bar " + span.status + (bar.kind === "branch" ? " branch" : "") +
                   (i < spans.length - 1 ? " retried" : ""));
      b.dataset.path = bar.path;
      const end = span.end == null ? total : span.end;
      b.style.left = (100 * span.start / total) + "%";
      b.style.width = (100 * Math.max(0, end - span.start) / total) + "%";
      const lines = [bar.path + "  (" + bar.kind + ")", "status " + span.status,
                     "start " + fmt(span.start) + "  end " + fmt(end) +
                     "  took " + fmt(end - span.start)];
      if (span.n) lines.push("attempt " + span.n + " of " + bar.spans.length);
      if (span.error) lines.push(span.error);
      b.addEventListener("mousemove", (ev) => {
        tip.textContent = lines.join("\n");
        tip.style.display = "block";
        tip.style.left = (ev.clientX + 12) + "px";
        tip.style.top = (ev.clientY + 12) + "px";
      });
      b.addEventListener("mouseleave", () => { tip.style.display = "none"; });
      track.appendChild(b);
    });
    row.appendChild(track);
    chart.appendChild(row);
    rows.push(row);
    const next = data.bars[index + 1];
    if (next && next.depth > bar.depth) {
      label.classList.add("fold");
      label.addEventListener("click", () => {
        const closed = label.classList.toggle("closed");
        for (let j = index + 1; j < data.bars.length && data.bars[j].depth > bar.depth; j++) {
          rows[j].classList.toggle("hidden", closed);
        }
      });
    }
  });
  document.body.dataset.drawn = String(rows.length);
})();
"""
