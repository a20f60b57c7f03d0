"""Every request gets an id, echoed back and carried by every log line and error body about it.

The id comes from the client's ``X-Request-ID`` when it is a sane token, else
from the trace id of the request's span when tracing is on (which continues a
client's W3C ``traceparent``), else from a ``traceparent``'s trace id, else it
is generated: 32 hex digits, the shape of a trace id, so one id finds the
request in the logs and in a tracing backend.

A pure ASGI middleware (no task switch, so the context it sets is the one every
handler sees) resolves the id, times the request, counts bytes both ways and
writes the request's one access-log line when it ends. Code serving the
request adds fields to that line with ``note()``.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import tracing

access_log = logging.getLogger("service.access")

HEADER = "X-Request-ID"
_HEADER_BYTES = HEADER.lower().encode()
# Ids a client may choose: UUIDs, ULIDs, AWS's Root=1-...; nothing that could forge a log line.
_CLIENT_ID = re.compile(r"[A-Za-z0-9._~:;/+=@-]{1,128}")
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}")
# Probes and scrapes arrive every few seconds: their lines are DEBUG unless they fail.
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})


@dataclass
class RequestContext:
    request_id: str
    fields: dict[str, Any] = field(default_factory=dict)  # added to the access-log line
    images: list[tuple[str | None, int, int]] = field(default_factory=list)  # (format, width, height)


_current: ContextVar[RequestContext | None] = ContextVar("request_context", default=None)


def current() -> RequestContext | None:
    return _current.get()


def current_id() -> str | None:
    ctx = _current.get()
    return ctx.request_id if ctx else None


def note(**fields: Any) -> None:
    """Add fields to this request's access-log line (no-op outside a request)."""
    ctx = _current.get()
    if ctx is not None:
        ctx.fields.update(fields)


def note_image(image_format: str | None, width: int, height: int) -> None:
    ctx = _current.get()
    if ctx is not None:
        ctx.images.append((image_format, width, height))


def new_id() -> str:
    return uuid.uuid4().hex


def given_id(headers: dict[str, str]) -> str | None:
    """The client's ``X-Request-ID`` when it is a sane token (anything else is replaced, not echoed)."""
    given = headers.get("x-request-id", "").strip()
    return given if _CLIENT_ID.fullmatch(given) else None


def parent_trace_id(headers: dict[str, str]) -> str | None:
    """The trace id of a W3C ``traceparent`` header, when it is well formed."""
    parent = _TRACEPARENT.fullmatch(headers.get("traceparent", "").strip().lower())
    return parent.group(1) if parent and parent.group(1) != "0" * 32 else None


def image_fields(images: list[tuple[str | None, int, int]]) -> dict[str, Any]:
    """One image: its format and size, flat (easy to query); a batch: how many and which formats."""
    if len(images) == 1:
        fmt, w, h = images[0]
        return {"image_format": fmt, "image_width": w, "image_height": h}
    if images:
        return {"images": len(images), "image_formats": ",".join(sorted({f or "?" for f, _, _ in images}))}
    return {}


class RequestIdMiddleware:
    """Resolve the id, echo it, hand the request's tracing state on, and log the request once at the end."""

    def __init__(self, app: ASGIApp, tracer: tracing.Tracing) -> None:
        self.app, self.tracer = app, tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        trace = self.tracer.start_request()
        ctx = RequestContext(given_id(headers) or trace.trace_id or parent_trace_id(headers) or new_id())
        trace.tag(ctx.request_id)
        # Set, never reset: each request runs in its own task, and the 500 handler, which
        # Starlette runs outside this middleware, must still see the id.
        _current.set(ctx)
        start = time.perf_counter()
        counts = {"status": 500, "bytes_in": 0, "bytes_out": 0}
        header = (_HEADER_BYTES, ctx.request_id.encode("latin-1"))

        async def receive_counted() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                counts["bytes_in"] += len(message.get("body", b""))
            return message

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                counts["status"] = message["status"]
                raw = list(message.get("headers", []))
                if all(k.lower() != _HEADER_BYTES for k, _ in raw):
                    raw.append(header)
                message = {**message, "headers": raw}
            elif message["type"] == "http.response.body":
                counts["bytes_out"] += len(message.get("body", b""))
                if not message.get("more_body", False):
                    trace.responded()  # before the server span (outside this middleware) ends
            await send(message)

        try:
            await self.app(scope, receive_counted, send_with_id)
        except Exception:
            ctx.fields.setdefault("outcome", "internal_error")  # answered 500 by Starlette, outside
            raise
        finally:
            trace.responded()
            route = getattr(scope.get("route"), "path", None)
            write_access_line(scope, route, ctx, counts, (time.perf_counter() - start) * 1e3, trace.trace_id)


def write_access_line(
    scope: Scope,
    route: str | None,
    ctx: RequestContext,
    counts: dict[str, int],
    latency_ms: float,
    trace_id: str | None,
) -> None:
    status = counts["status"]
    level = logging.DEBUG if route in QUIET_ROUTES and status < 400 else logging.INFO
    if not access_log.isEnabledFor(level):
        return
    method, path = scope.get("method", "?"), scope.get("path", "")
    fields: dict[str, Any] = {
        "method": method,
        "route": route or "unmatched",
        "path": path,  # never the query string
        "status": status,
        "latency_ms": round(latency_ms, 3),
        "bytes_in": counts["bytes_in"],
        "bytes_out": counts["bytes_out"],
        "client": (scope.get("client") or ("?",))[0],
        **image_fields(ctx.images),
        **ctx.fields,
    }
    fields.setdefault("outcome", "ok" if status < 400 else f"http_{status}")
    if trace_id:
        fields["trace_id"] = trace_id
    access_log.log(level, "%s %s %d %.1f ms", method, path, status, latency_ms, extra={"fields": fields})
