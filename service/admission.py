"""Admission control: a bounded number of predict requests in flight and queued; the rest shed at once.

Without it every request is accepted and waits: at twice the capacity the
queue and the memory grow without bound, and most of the work is done for
clients that have already given up. Here, for the predict routes only:

- at most ``MAX_IN_FLIGHT`` requests are served at once (decoding,
  inferring) and at most ``MAX_QUEUE`` wait for a slot, first come first
  served; a request takes its slot once its body is in, so a slow upload holds
  a connection (capped, timed) but never a slot;
- each request gets a deadline, ``REQUEST_TIMEOUT_S`` after it arrived (time
  spent receiving its body is not counted: the connection's body timeout bounds
  that); a request whose expected answer time (the requests ahead of it x the
  server's recent time per answered request) is already past its deadline is
  refused at once instead of waiting to fail;
- a refusal is 503 with ``Retry-After`` and a JSON error, in milliseconds
  (decided when the request arrives, before its body is read, and again when
  it asks for its slot), counted in ``requests_shed_total{reason}``;
- when the client disconnects, its request is cancelled wherever it is
  (queued, decoding, waiting for the micro-batch), so no inference is spent on
  an answer nobody will read (status 499 in ``http_requests_total``,
  ``inferences_skipped_total{reason="client_gone"}``).

The deadline and the request's memory account travel in a context variable,
so the upload reader, the predictor and the micro-batcher see them without
extra parameters.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections import deque
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import Overloaded, refusal
from service.memory import Account, MemoryBudget
from service.metrics import Metrics

# The routes that cost inference (issue 14's Open Inference Protocol route included), with the
# template the metrics use for them.
GUARDED = (
    (re.compile(r"/predict"), "/predict"),
    (re.compile(r"/predict/batch"), "/predict/batch"),
    (re.compile(r"/v2/models/[^/]+(/versions/[^/]+)?/infer"), "/v2/models/{model_name}/infer"),
)
CLIENT_GONE = 499  # nginx's "client closed request": counted, never sent


@dataclass
class Ticket:
    """One admitted request: its deadline (``time.monotonic()``), memory account, and whether its client left."""

    deadline: float
    account: Account | None = None
    gone: asyncio.Event = field(default_factory=asyncio.Event)
    upload_seconds: float = 0.0  # the client's time to send its body (added to the deadline)
    admitted_at: float | None = None  # when it took its slot (once its body was in)
    status: int = 0  # of the answer, once sent

    def remaining(self) -> float:
        return self.deadline - time.monotonic()


_CURRENT: ContextVar[Ticket | None] = ContextVar("admission_ticket", default=None)


def current_ticket() -> Ticket | None:
    """The ticket of the request being served on this task, None outside admission (tests, warm-up)."""
    return _CURRENT.get()


def current_deadline() -> float | None:
    ticket = _CURRENT.get()
    return None if ticket is None else ticket.deadline


class Admission:
    """Slots, a FIFO queue, and shedding of what cannot meet its deadline at the recent pace."""

    def __init__(self, capacity: int, max_queue: int, metrics: Metrics | None = None) -> None:
        self.capacity, self.max_queue = capacity, max_queue
        self.active = 0
        self._queue: deque[asyncio.Future[None]] = deque()
        # Moving average of the server's time per answered request: a request's time in its slot
        # (less its upload) divided by the requests that shared the server with it.
        self._interval = 0.0
        self._metrics = metrics

    def seed(self, seconds_per_request: float) -> None:
        """A first guess of the pace (the warm-up's inference time) before any request was answered."""
        if not self._interval:
            self._interval = seconds_per_request

    def expected_wait(self, ahead: int) -> float:
        """Seconds until a request with ``ahead`` requests before it (in flight or queued) is answered."""
        return (ahead + 1) * self._interval

    def retry_after(self, timeout_s: float) -> int:
        """Seconds until a new request would fit in its deadline, at the recent pace (1 to 60)."""
        over = self.expected_wait(self.active + len(self._queue)) - timeout_s
        return min(60, max(1, math.ceil(over)))

    def check(self, deadline: float, timeout_s: float) -> None:
        """Raise ``Overloaded`` at once if a request arriving now could not be served in time."""
        if self.active >= self.capacity and len(self._queue) >= self.max_queue:
            message = f"the server is at capacity ({self.active} in flight, {len(self._queue)} queued); retry"
            raise Overloaded("queue_full", message, self.retry_after(timeout_s))
        wait = self.expected_wait(self.active + len(self._queue))
        if wait > deadline - time.monotonic():
            raise Overloaded(
                "deadline",
                f"the server is busy: an answer would take about {wait:.1f}s, past the deadline; retry",
                self.retry_after(timeout_s),
            )

    async def enter(self, deadline: float, timeout_s: float) -> None:
        """Take a slot, waiting in line while that can still meet ``deadline``; else raise ``Overloaded``."""
        self.check(deadline, timeout_s)
        if self.active < self.capacity and not self._queue:
            self.active += 1
            self._publish()
            return
        slot: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(slot)
        self._publish()
        try:
            await asyncio.wait_for(slot, max(0.0, deadline - time.monotonic()))
        except BaseException as exc:  # timed out, or the client left while queued
            if slot.done() and not slot.cancelled():
                self.leave(None)  # the slot came in the same instant: pass it on
            elif slot in self._queue:
                self._queue.remove(slot)
            self._publish()
            if isinstance(exc, TimeoutError):
                raise Overloaded("queue_timeout", "no slot came free before the request's deadline; retry") from None
            raise

    def leave(self, served_seconds: float | None) -> None:
        """Free a slot (handing it to the oldest waiter); learn the pace from an answered request."""
        if served_seconds is not None:
            sample = served_seconds / max(1, self.active)
            self._interval = sample if not self._interval else 0.8 * self._interval + 0.2 * sample
        while self._queue:
            slot = self._queue.popleft()
            if not slot.done():
                slot.set_result(None)  # the slot passes on: ``active`` is unchanged
                self._publish()
                return
        self.active -= 1
        self._publish()

    def _publish(self) -> None:
        if self._metrics is not None:
            self._metrics.admitted.set(self.active)
            self._metrics.queued.set(len(self._queue))


@dataclass(frozen=True)
class _Route:
    path: str  # what MetricsMiddleware labels a request with


class AdmissionMiddleware:
    """Admission, deadline, memory account and cancel-on-disconnect around the guarded routes."""

    def __init__(
        self,
        app: ASGIApp,
        admission: Admission,
        budget: MemoryBudget,
        timeout_s: float,
        is_ready: Callable[[], bool],
        metrics: Metrics | None = None,
    ) -> None:
        self.app, self.admission, self.budget, self.timeout_s = app, admission, budget, timeout_s
        self.is_ready, self.metrics = is_ready, metrics

    def _guarded(self, scope: Scope) -> str | None:
        if scope["type"] != "http" or scope.get("method") != "POST" or not self.is_ready():
            return None
        return next((template for pattern, template in GUARDED if pattern.fullmatch(scope["path"])), None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        template = self._guarded(scope)
        if template is None:
            await self.app(scope, receive, send)
            return
        ticket = Ticket(deadline=time.monotonic() + self.timeout_s)
        try:
            self.admission.check(ticket.deadline, self.timeout_s)  # before a byte of the body is read
        except Overloaded as exc:
            self._count_shed(exc.reason)
            scope["route"] = _Route(template)
            await refusal(exc)(scope, receive, send)
            return
        ticket.account = Account(self.budget, ticket)
        token = _CURRENT.set(ticket)
        try:
            await self._serve(scope, receive, send, ticket)
        finally:
            _CURRENT.reset(token)
            ticket.account.close()
            if ticket.admitted_at is not None:
                served = time.monotonic() - ticket.admitted_at
                self.admission.leave(served if ticket.status == 200 else None)

    async def _serve(self, scope: Scope, receive: Receive, send: Send, ticket: Ticket) -> None:
        """Run the route as a task that is cancelled if the client disconnects once its body is in."""
        watcher: asyncio.Task[None] | None = None
        body_started: float | None = None
        answered = False

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            if not answered:  # uvicorn also says "disconnect" once the answer is out
                ticket.gone.set()
                task.cancel()

        async def send_noting(message: Message) -> None:
            nonlocal answered
            if message["type"] == "http.response.start":
                ticket.status = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                answered = True
            await send(message)

        async def receive_body() -> Message:
            nonlocal watcher, body_started
            if watcher is not None:  # the body is in: the watcher owns ``receive`` now
                await ticket.gone.wait()
                return {"type": "http.disconnect"}
            body_started = body_started or time.monotonic()
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body", False):
                ticket.upload_seconds = time.monotonic() - body_started
                ticket.deadline += ticket.upload_seconds  # the client's sending time is not ours
                watcher = asyncio.get_running_loop().create_task(watch())
                # The slot is taken only now: a slow upload holds a connection, never a slot.
                await self.admission.enter(ticket.deadline, self.timeout_s)  # Overloaded -> the route's 503
                ticket.admitted_at = time.monotonic()
            elif message["type"] == "http.disconnect":  # left while sending: nothing to answer
                ticket.gone.set()
                task.cancel()
            return message

        async def route() -> None:
            await self.app(scope, receive_body, send_noting)

        task = asyncio.get_running_loop().create_task(route())
        try:
            await task
        except asyncio.CancelledError:
            if not ticket.gone.is_set():
                raise  # the server is shutting down, not the client
            await _count_only(send)  # a 499 in http_requests_total; not a shed, the server refused nothing
        finally:
            if watcher is not None:
                watcher.cancel()

    def _count_shed(self, reason: str) -> None:
        if self.metrics is not None:
            self.metrics.shed.labels(reason).inc()


async def _count_only(send: Send) -> None:
    """A 499 for the metrics: uvicorn drops it, the client is gone."""
    message: dict[str, Any] = {"type": "http.response.start", "status": CLIENT_GONE, "headers": []}
    try:
        await send(message)
        await send({"type": "http.response.body", "body": b""})
    except Exception:  # noqa: BLE001 - nothing to tell a client that left
        pass
