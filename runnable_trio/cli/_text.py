"""Events and times as text: the plain lines of ``run`` off a terminal, and JSON lines."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from .._events import META_KEY

__all__ = ["duration", "event_json", "event_text", "lifecycle_line", "local_time"]

LIMIT = 160


def event_text(event: dict[str, Any]) -> str:
    """One short line for a user event: its step and its fields."""
    meta = event.get(META_KEY) or {}
    fields = {k: v for k, v in event.items() if k != META_KEY}
    body = json.dumps(fields, default=repr, ensure_ascii=False)
    if len(body) > LIMIT:
        body = body[: LIMIT - 1] + "…"
    step = meta.get("step") if isinstance(meta, dict) else None
    return f"{step}: {body}" if step else body


def event_json(event: dict[str, Any]) -> str:
    """The event as one JSON line (values JSON cannot hold as their ``repr``)."""
    return json.dumps(event, default=repr, ensure_ascii=False)


def lifecycle_line(event: dict[str, Any]) -> str | None:
    """The plain line of a lifecycle event, or None for a user event."""
    meta = event.get(META_KEY)
    kind = event.get("type")
    if not isinstance(meta, dict) or not isinstance(kind, str):
        return None
    if not kind.startswith(("run.", "step.")):
        return None
    stamp = local_time(meta.get("ts"))
    step = meta.get("step") or ""
    extra = []
    for key in ("kind", "pipeline", "attempt", "delay", "failed_step", "error_type", "error"):
        if key in event and event[key] not in (None, ""):
            extra.append(f"{key}={event[key]}")
    parts = [stamp, f"{kind:<15}", step, *extra]
    return " ".join(part for part in parts if part).rstrip()


def local_time(ts: object) -> str:
    if not isinstance(ts, int | float):
        return ""
    return dt.datetime.fromtimestamp(ts).strftime("%H:%M:%S.%f")[:-3]


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 120:
        return f"{seconds:.2f}s"
    minutes, rest = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{rest:02d}s" if hours else f"{minutes}m{rest:02d}s"
