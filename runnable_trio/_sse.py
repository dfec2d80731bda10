"""Server-Sent Events: a run's event stream as the body of an SSE response.

Framework-neutral and flavour-neutral: :class:`SSEStream` only iterates the events it is given,
so the same code serves a Starlette/FastAPI ``StreamingResponse`` on Trio (Hypercorn's Trio
worker, over ``execute_streaming()`` or ``replay()``) and on asyncio (uvicorn, over the
``runnable`` package's streams). It is a plain async iterator, not a generator, so dropping it
(a client gone) drops the run's iterator, which cancels the run.

Each event becomes one message::

    id: 7
    data: {"type": "chunk", "text": "Hello "}

``id`` is the event's sequence number in its run (``_meta.seq`` with attribution on, else the
source's ``last_seq``, else counted from ``after``), so a client that reconnects with the
``Last-Event-ID`` header can resume after the last event it saw: with the run's event log on,
``replay(run_id, after=parse_last_event_id(header))`` gives exactly the later events, and
wrapping it in an ``SSEStream`` gives them the same ids.

A failed run never ends in a silently truncated body: the stream ends with a last message,
without an ``id`` (it is not one of the run's events), whose data is
``{"type": "error", "error": ..., "error_type": ..., "error_message": ..., "run_id": ...,
"step": ...}``: the reference's documented error event (``error``, the whole text), with what
failed, the run and the step named as in the ``run.failed`` event and the run log; a replay of
the run ends with the same one.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Mapping
from typing import Any

from ._errors import RunConfigurationError, RunnableError
from ._events import META_KEY, Event
from ._jsoncodec import dumps

__all__ = ["SSE_HEADERS", "SSE_MEDIA_TYPE", "SSEStream", "format_sse", "parse_last_event_id"]

SSE_MEDIA_TYPE = "text/event-stream"

#: Response headers for an SSE body: no caching, no buffering by proxies (nginx).
SSE_HEADERS: Mapping[str, str] = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def format_sse(data: Mapping[str, Any], *, id: int | str | None = None) -> str:
    """One SSE message: an optional ``id:`` line, a ``data:`` line of JSON, a blank line.

    Args:
        data: the message; encoded as compact JSON on one line (newlines inside strings are
            escaped by JSON, so one ``data:`` line always suffices) by the encoder of the run
            log and the event log: a value JSON cannot hold is written as the records write
            it (a datetime in ISO 8601, an attrs instance or dataclass as a dict of its
            fields, anything else as ``{"$repr": ...}``), so an event sent live and the same
            event replayed from the event log give byte-identical messages.
        id: the message id; must not contain a line break.

    Raises:
        ValueError: ``id`` contains a line break.
    """
    body = dumps(data, ascii=False)
    if id is None:
        return f"data: {body}\n\n"
    text = str(id)
    if "\n" in text or "\r" in text:
        raise ValueError(f"an SSE id cannot contain a line break (got {text!r})")
    return f"id: {text}\ndata: {body}\n\n"


def parse_last_event_id(value: str | None) -> int:
    """The sequence number in a ``Last-Event-ID`` header; 0 when there is none.

    Raises:
        RunConfigurationError: the header is not a non-negative integer.
    """
    if value is None or not value.strip():
        return 0
    text = value.strip()
    if not text.isdecimal():
        raise RunConfigurationError(
            f"Last-Event-ID must be an event's sequence number (got {value!r})"
        )
    return int(text)


def error_event(failure: RunnableError) -> dict[str, Any]:
    """The terminal event for a failure: its text, what failed, and the run and step if known.

    ``error`` is the failure's whole text (the key the reference's streams use);
    ``error_type`` and ``error_message`` are what failed, named as in the ``run.failed``
    event and the run log (for a failed run, the task's exception, not the wrapper).
    """
    error_type = getattr(failure, "error_type", None) or type(failure).__name__
    error_message = getattr(failure, "error_message", None)
    return {
        "type": "error",
        "error": str(failure),
        "error_type": error_type,
        "error_message": str(failure) if error_message is None else error_message,
        "run_id": getattr(failure, "run_id", None),
        "step": getattr(failure, "step", None),
    }


class SSEStream:
    """The SSE messages (``str``) of an event stream: ``StreamingResponse(SSEStream(run))``.

    Args:
        events: the run's events: ``execute_streaming()``, ``stream()``'s events, or
            ``replay()``.
        after: the sequence number of the last event already sent (for a resumed stream,
            ``parse_last_event_id(...)``); ids are counted from it when the events carry none.

    Cancellation: a cancelled ``__anext__`` is the events' own: leaving a run's stream
    cancels the run. ``aclose()`` closes the events.
    """

    def __init__(self, events: AsyncIterable[Event], *, after: int = 0) -> None:
        self._source = events
        self._events: AsyncIterator[Event] = aiter(events)
        self._seq = after
        self._done = False

    def __aiter__(self) -> SSEStream:
        return self

    async def __anext__(self) -> str:
        if self._done:
            raise StopAsyncIteration
        try:
            event = await anext(self._events)
        except RunnableError as failure:
            self._done = True
            return format_sse(error_event(failure))
        except StopAsyncIteration:
            self._done = True
            raise
        return format_sse(event, id=self._next_id(event))

    def _next_id(self, event: Event) -> int:
        meta = event.get(META_KEY)
        seq = meta.get("seq") if isinstance(meta, dict) else None
        if not isinstance(seq, int):
            seq = getattr(self._source, "last_seq", None)
        self._seq = seq if isinstance(seq, int) and seq > self._seq else self._seq + 1
        return self._seq

    async def aclose(self) -> None:
        """Close the events (for a run: cancel it if it is still going, and wait for it)."""
        self._done = True
        close = getattr(self._events, "aclose", None)
        if close is not None:
            await close()
