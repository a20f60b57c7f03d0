"""Prometheus metrics, one registry per app (tests build many apps in one process).

A pure ASGI middleware counts requests by route template (never the raw path,
which a client controls) and status, times them, and tracks those in flight.
The predictor reports the decode / preprocess / inference stages and the
micro-batch sizes.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_STAGE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "http_requests", "HTTP requests by route and status", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Request latency by route",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge("http_requests_in_flight", "Requests being served now", registry=r)
        self.stage = Histogram(
            "predict_stage_seconds", "Time per image in each stage", ["stage"], buckets=_STAGE_BUCKETS, registry=r
        )
        self.batch_size = Histogram(
            "inference_batch_size",
            "Images per onnxruntime call",
            buckets=(1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64),
            registry=r,
        )
        self.batch_seconds = Histogram(
            "inference_batch_seconds", "Time per onnxruntime call", buckets=_STAGE_BUCKETS, registry=r
        )
        self.images = Counter("predict_images", "Images answered, by outcome", ["outcome"], registry=r)
        # Scaling with the cores (issue 15): which session ran each call: "0".."N-1", or "latency".
        self.instance_calls = Counter(
            "inference_instance_calls", "onnxruntime calls by inference instance", ["instance"], registry=r
        )
        # Admission control, memory budget, connection guards, drain (service/admission.py, memory.py,
        # connections.py, drain.py); the alert rules build on these names.
        self.shed = Counter(
            "requests_shed", "Requests refused to protect the service, by reason", ["reason"], registry=r
        )
        self.admitted = Gauge("admission_in_flight", "Predict requests admitted and being served", registry=r)
        self.queued = Gauge("admission_queue_depth", "Predict requests waiting for a slot", registry=r)
        self.skipped = Counter(
            "inferences_skipped",
            "Images dropped before inference, by reason (client_gone, deadline)",
            ["reason"],
            registry=r,
        )
        self.memory_in_use = Gauge(
            "memory_budget_bytes_in_use", "Bytes of the memory budget held by bodies and decodes", registry=r
        )
        self.memory_budget = Gauge("memory_budget_bytes", "The memory budget (MEMORY_BUDGET_BYTES)", registry=r)
        self.connection_timeouts = Counter(
            "connection_timeouts",
            "Connections closed for slowness, by phase (idle, header, body)",
            ["phase"],
            registry=r,
        )
        self.connections_refused = Counter(
            "connections_refused", "Connections answered 503 past MAX_CONNECTIONS", registry=r
        )
        self.lingering_closes = Counter(
            "lingering_closes", "Early answers after which the unread body was drained before closing", registry=r
        )
        self.draining = Gauge("draining", "1 from SIGTERM until exit: /readyz answers 503", registry=r)

    def observe_stages(self, timing_ms: dict[str, float]) -> None:
        for stage, ms in timing_ms.items():
            self.stage.labels(stage).observe(ms / 1000.0)

    def count_connection_event(self, what: str, label: str = "") -> None:
        """Called by the connection guards (service/connections.py), outside any request."""
        if what == "timeouts":
            self.connection_timeouts.labels(label).inc()
        elif what == "connections_refused":
            self.connections_refused.inc()
        elif what == "lingering_closes":
            self.lingering_closes.inc()

    def observe_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.batch_seconds.observe(seconds)

    def observe_instance(self, instance: str) -> None:
        self.instance_calls.labels(instance).inc()


def route_label(scope: Scope) -> str:
    """The route template that answered: FastAPI routes set ``route``; Starlette's own routes
    (``/docs``, ``/openapi.json``) and mounts only set ``endpoint``, so look that up."""
    route = scope.get("route")
    if route is not None:
        return route.path
    endpoint = scope.get("endpoint")
    for r in getattr(scope.get("app"), "routes", ()) if endpoint is not None else ():
        if isinstance(r, Mount) and r.app is endpoint:
            return r.path + "/{path}"
        if getattr(r, "endpoint", None) is endpoint:
            return r.path
    return "unmatched"


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        start = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.in_flight.dec()
            route = route_label(scope)
            method = scope.get("method", "GET")
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - start)
