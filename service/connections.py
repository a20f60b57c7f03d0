"""Connection-level guards under uvicorn's h11 protocol: timeouts, a connection cap, lingering close.

uvicorn (0.54, h11) holds a connection for ever while a client sends its
headers or body slowly, accepts any number of connections, and closes the
socket at once after answering a request whose body it has not read: the
client, still sending, then gets a TCP reset instead of the answer (Python's
``urllib`` and ``http.client`` report ``ConnectionResetError``). This protocol
subclass adds what nginx does by default:

- a header timeout from the moment a request may start (new connection, or a
  first byte after a keep-alive pause) to its last header;
- a body timeout that grows with the bytes received (``BODY_TIMEOUT_S`` plus
  one second per ``BODY_MIN_RATE`` bytes), so a slow link passes and a client
  sending a byte a second does not;
- a cap on open connections: past it, a request is answered 503 (JSON) and its
  connection closed;
- a lingering close: when the answer went out before the body was read (413,
  401...), the rest of the body is read and thrown away, up to
  ``LINGER_BYTES`` and ``LINGER_SECONDS`` (and while it keeps coming at
  ``BODY_MIN_RATE``), before the socket closes, so every client reads the
  refusal;
- malformed HTTP is answered in the same JSON error shape as everything else.

Everything else (parsing, keep-alive, flow control) is uvicorn's own code.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import h11
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from service.drain import Drain
from service.metrics import Metrics

log = logging.getLogger("service")


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout_s: float = 10.0
    body_timeout_s: float = 10.0
    body_min_rate: int = 64 * 1024
    max_connections: int = 512
    linger_seconds: float = 30.0
    linger_bytes: int = 128 * 1024 * 1024
    linger_idle_s: float = 5.0  # lingering ends early when the client goes quiet (nginx's lingering_timeout)


def error_response(status: int, code: str, message: str, retry_after: int | None = None) -> bytes:
    """A complete HTTP/1.1 response with the service's JSON error body; it always closes the connection."""
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    reason = {400: "Bad Request", 408: "Request Timeout", 503: "Service Unavailable"}.get(status, "Error")
    head = [
        f"HTTP/1.1 {status} {reason}",
        "content-type: application/json",
        f"content-length: {len(body)}",
        "connection: close",
        "x-content-type-options: nosniff",
    ]
    if retry_after is not None:
        head.append(f"retry-after: {retry_after}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class _LingeringTransport(asyncio.Transport):
    """The real transport, except that ``close`` may linger (see ``GuardedH11Protocol._close``)."""

    def __init__(self, inner: asyncio.Transport, protocol: GuardedH11Protocol) -> None:
        super().__init__()
        self.inner, self.protocol = inner, protocol

    def close(self) -> None:
        self.protocol._close()

    def is_closing(self) -> bool:
        return self.inner.is_closing() or self.protocol._lingering

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.inner.write(data)

    def writelines(self, list_of_data: Any) -> None:
        self.inner.writelines(list_of_data)

    def write_eof(self) -> None:
        self.inner.write_eof()

    def can_write_eof(self) -> bool:
        return self.inner.can_write_eof()

    def abort(self) -> None:
        self.inner.abort()

    def pause_reading(self) -> None:
        self.inner.pause_reading()

    def resume_reading(self) -> None:
        self.inner.resume_reading()

    def is_reading(self) -> bool:
        return self.inner.is_reading()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.inner.get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.inner.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self.inner.get_protocol()

    def get_write_buffer_size(self) -> int:
        return self.inner.get_write_buffer_size()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.inner.set_write_buffer_limits(high, low)


async def _over_capacity(scope: Any, receive: Any, send: Any) -> None:
    """The ASGI app a connection past ``MAX_CONNECTIONS`` gets: a JSON 503, then the connection closes."""
    body = json.dumps(
        {"error": {"code": "too_many_connections", "message": "the server has too many open connections; retry"}}
    ).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", b"1"),
        (b"connection", b"close"),
        (b"x-content-type-options", b"nosniff"),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with timeouts, a connection cap and a lingering close (module docstring)."""

    limits = ConnectionLimits()
    metrics: Metrics | None = None

    # --- connection lifetime -------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._timer: asyncio.TimerHandle | None = None
        self._phase = "header"  # header -> body -> app (-> header again on keep-alive)
        self._phase_start = time.monotonic()
        self._body_bytes = 0
        self._request_bytes = 0  # bytes of a request whose headers are not complete yet
        self._lingering = False
        self._linger_bytes = 0
        self._linger_last = 0.0
        self._lost = False
        self._real_transport = transport
        super().connection_made(_LingeringTransport(transport, self))
        if len(self.connections) > self.limits.max_connections:
            self.app = _over_capacity  # answered 503 and closed on its first request
            self._count("connections_refused")
        self._arm(self.limits.header_timeout_s)

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._lingering:  # the answer is out; count and drop what the client still sends
            self._linger_bytes += len(data)
            self._linger_last = time.monotonic()
            if self._linger_bytes > self.limits.linger_bytes:
                self._close_now()
            return
        before = self.conn.their_state
        if before is h11.IDLE:
            self._request_bytes += len(data)
        elif before is h11.SEND_BODY:
            self._body_bytes += len(data)
        super().data_received(data)
        self._follow_state()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._enter("header")  # keep-alive: uvicorn's idle timer runs; ours starts at the next byte
            self._disarm()

    def shutdown(self) -> None:
        if self._lingering:
            self._close_now()
            return
        super().shutdown()

    def send_400_response(self, msg: str) -> None:
        """Malformed HTTP (bad request line, headers too large...): the JSON error shape, then close."""
        message = "the request is not valid HTTP/1.1, or its headers are too large"
        self._write_and_close(error_response(400, "bad_http_request", message))

    # --- phases and timers ---------------------------------------------------------------
    def _follow_state(self) -> None:
        """Move between phases as h11 parses: headers complete -> body -> the app has the request."""
        state = self.conn.their_state
        if state is h11.IDLE:
            if self._phase != "header":  # an early answer's body was drained; the next request may come
                self._enter("header")
                self._arm(self.limits.header_timeout_s)
            elif self._timer is None and self._request_bytes:
                self._phase_start = time.monotonic()  # a request started after a keep-alive pause
                self._arm(self.limits.header_timeout_s)
        elif state is h11.SEND_BODY:
            if self._phase != "body":
                self._enter("body")
                self._arm(self.limits.body_timeout_s)
        elif self._phase != "app":
            self._enter("app")
            self._disarm()

    def _enter(self, phase: str) -> None:
        self._phase, self._phase_start = phase, time.monotonic()
        self._body_bytes = self._request_bytes = 0

    def _arm(self, delay: float) -> None:
        self._disarm()
        self._timer = self.loop.call_later(max(0.0, delay), self._on_timer)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_timer(self) -> None:
        self._timer = None
        if self._lost:
            return
        now = time.monotonic()
        if self._lingering:
            elapsed = now - self._phase_start
            quiet = now - self._linger_last > self.limits.linger_idle_s
            # after a grace, a trickle (a byte a second) is not worth waiting for: the body rate applies
            trickle = self._linger_bytes < (elapsed - self.limits.linger_idle_s) * self.limits.body_min_rate
            if quiet or trickle or elapsed > self.limits.linger_seconds:
                self._close_now()
            else:
                self._timer = self.loop.call_later(0.25, self._on_timer)
            return
        if self._phase == "header" and self.conn.their_state is h11.IDLE:
            if self._request_bytes:
                self._timeout("header", "the request headers did not arrive in time (HEADER_TIMEOUT_S)")
            else:  # an idle connection that never sent a byte: nothing to answer
                self._count("timeouts", "idle")
                self._close_now()
        elif self._phase == "body" and self.conn.their_state is h11.SEND_BODY:
            if self.flow.read_paused:  # the server is not reading (the app has not asked yet): not the client's fault
                self._phase_start, self._body_bytes = now, 0
                self._arm(self.limits.body_timeout_s)
                return
            allowed = self.limits.body_timeout_s + self._body_bytes / self.limits.body_min_rate
            remaining = self._phase_start + allowed - now
            if remaining > 0:
                self._arm(remaining)
            else:
                self._timeout("body", "the request body arrived too slowly (BODY_TIMEOUT_S, BODY_MIN_RATE)")

    def _timeout(self, phase: str, message: str) -> None:
        self._count("timeouts", phase)
        log.info("closing a connection: %s", message)
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True  # the app's own answer, if any, is dropped
            self.cycle.message_event.set()
        self._write_and_close(error_response(408, "request_timeout", message))

    def _write_and_close(self, response: bytes) -> None:
        if not self._real_transport.is_closing():
            self._real_transport.write(response)
        self._close_now()

    # --- closing -------------------------------------------------------------------------
    def _close(self) -> None:
        """uvicorn closes after an answer; linger first if the client is still sending its body."""
        if self._lingering or self._lost or self._real_transport.is_closing():
            self._real_transport.close()
            return
        if self.conn.their_state is h11.SEND_BODY and self.limits.linger_seconds > 0:
            self._lingering = True
            self._phase_start = self._linger_last = time.monotonic()
            self._count("lingering_closes")
            self._real_transport.resume_reading()
            self._arm(0.25)
            return
        self._real_transport.close()

    def _close_now(self) -> None:
        self._lingering = False
        self._disarm()
        self._real_transport.close()

    def _count(self, what: str, label: str = "") -> None:
        if self.metrics is not None:
            self.metrics.count_connection_event(what, label)


def guarded_protocol(limits: ConnectionLimits, metrics: Metrics | None) -> type[GuardedH11Protocol]:
    """A protocol class bound to these limits and metrics (uvicorn instantiates it per connection)."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {"limits": limits, "metrics": metrics})


class KeepAliveMiddleware:
    """Says ``Connection: close`` when the connection should not be reused after this answer.

    Two cases: the answer went out before the request body was read (a 413, a
    401, a shed 503: the rest of the body is then drained by the lingering
    close, up to its caps, instead of being parsed as the next request), and
    the service is draining for shutdown (the client reconnects elsewhere).
    """

    def __init__(self, app: ASGIApp, drain: Drain) -> None:
        self.app, self.drain = app, drain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        body_done = headers.get(b"content-length", b"0") in (b"", b"0") and b"transfer-encoding" not in headers

        async def receive_tracked() -> Message:
            nonlocal body_done
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        async def send_closing(message: Message) -> None:
            if message["type"] == "http.response.start" and (self.drain.draining or not body_done):
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"connection"]
                message = {**message, "headers": [*kept, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive_tracked, send_closing)
