"""Optional OpenTelemetry traces: FastAPI's own server span per request, and inside it the
service's stages: receive, decode, preprocess, queue, inference, respond. Exported by OTLP/HTTP
when an endpoint is set.

Off by default. While off, FastAPI's telemetry is switched off, the SDK and the exporter are
never imported, and each hook here (``span``, ``record``, ``annotate``, ``responding``)
costs one ContextVar lookup. On, the SDK provider goes to ``FastAPI(telemetry=...)``, whose
server span continues the client's W3C ``traceparent`` and follows the HTTP semantic
conventions; this module adds the stages. The per-request state travels in a ContextVar set by
the request-id middleware, not in a global, so apps with and without tracing can share one
process (the tests do), and it is one mutable object, so the decode threads (which run in a
copy of the request's context) and the middleware see the same one.

Queue and inference are recorded after the fact with explicit times: one onnxruntime call
serves a whole micro-batch, so every request in it gets its own ``inference`` span for the same
interval, tagged with the batch size. ``respond`` runs from the route's return (FastAPI's
validation and JSON encoding of the answer) until the last byte is handed to the server.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported for real only when tracing is on
    from fastapi.telemetry import TelemetryConfig
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

    from service.settings import Settings

_request: ContextVar[RequestTrace | None] = ContextVar("request_trace", default=None)
_NOOP: AbstractContextManager[Any] = nullcontext()


def active() -> bool:
    return _request.get() is not None


def span(name: str) -> AbstractContextManager[Any]:
    """A child span of whatever is current (``with tracing.span("decode"):``); a shared no-op when off."""
    request = _request.get()
    return _NOOP if request is None else _live_span(request.tracer, name)


@contextmanager
def _live_span(tracer: Tracer, name: str) -> Iterator[Span]:
    """A failure marks the span with its error code only: exception messages can quote the client's bytes."""
    with tracer.start_as_current_span(name, record_exception=False, set_status_on_exception=False) as current:
        try:
            yield current
        except Exception as exc:
            from opentelemetry.trace import StatusCode

            current.set_attribute("error.type", getattr(exc, "code", None) or type(exc).__name__)
            current.set_status(StatusCode.ERROR)
            raise


def record(name: str, start_ns: int, end_ns: int, **attributes: Any) -> None:
    """A span that already happened, from ``time.time_ns()`` stamps."""
    request = _request.get()
    if request is not None:
        request.tracer.start_span(name, start_time=start_ns, attributes=attributes).end(end_time=end_ns)


def annotate(**attributes: Any) -> None:
    """Attributes on the current span (image format and size on ``decode``, ...)."""
    if _request.get() is not None:
        from opentelemetry import trace

        trace.get_current_span().set_attributes({k: v for k, v in attributes.items() if v is not None})


def responding() -> None:
    """The answer is computed: from here until its last byte is sent is ``respond``."""
    request = _request.get()
    if request is not None and request.respond is None:
        request.respond = request.tracer.start_span("respond", context=request.context)


class NoTrace:
    """What a request carries while tracing is off: every call does nothing."""

    trace_id: str | None = None

    def tag(self, request_id: str) -> None:
        pass

    def responded(self) -> None:
        pass


NO_TRACE = NoTrace()


class RequestTrace(NoTrace):
    """One request's tracing state, made while FastAPI's server span is current."""

    def __init__(self, tracer: Tracer) -> None:
        from opentelemetry import context, trace

        self.tracer = tracer
        self.context = context.get_current()
        self.server: Span = trace.get_current_span(self.context)
        span_context = self.server.get_span_context()
        self.trace_id = format(span_context.trace_id, "032x") if span_context.is_valid else None
        self.respond: Span | None = None

    def tag(self, request_id: str) -> None:
        self.server.set_attribute("request.id", request_id)

    def responded(self) -> None:
        if self.respond is not None:
            self.respond.end()
            self.respond = None


class Tracing:
    """Per app: a tracer provider when tracing is on, else nothing at all."""

    def __init__(self, provider: TracerProvider | None = None) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("service") if provider is not None else None

    @property
    def enabled(self) -> bool:
        return self.tracer is not None

    @classmethod
    def from_settings(cls, settings: Settings) -> Tracing:
        if not settings.otel_exporter_otlp_endpoint:
            return cls()
        return cls(otlp_provider(settings.otel_exporter_otlp_endpoint, settings.otel_service_name))

    def fastapi_telemetry(self) -> TelemetryConfig:
        """``FastAPI(telemetry=...)``: its server span on our provider, or nothing at all.

        Its metrics and log events stay off: Prometheus and the JSON logs carry those.
        """
        if self.provider is None:
            return {"tracing": False, "metrics": False, "logs": False, "auto_configure": False}
        return {
            "tracer_provider": self.provider,
            "operation_spans": False,  # its dependencies/endpoint/serialization spans: the stages say more
            "metrics": False,
            "logs": False,
            "auto_configure": False,
        }

    def start_request(self) -> NoTrace:
        """Called by the request-id middleware, inside FastAPI's server span."""
        if self.tracer is None:
            _request.set(None)
            return NO_TRACE
        request = RequestTrace(self.tracer)
        _request.set(request)
        return request

    def shutdown(self) -> None:
        """Flush what is still batched (called when the app stops)."""
        if self.provider is not None:
            self.provider.shutdown()


def otlp_provider(endpoint: str, service_name: str) -> TracerProvider:
    """Spans batched to ``{endpoint}/v1/traces`` over OTLP/HTTP (protobuf).

    The SDK reads the other standard variables itself: ``OTEL_TRACES_SAMPLER``
    (and its argument), ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_EXPORTER_OTLP_HEADERS``,
    ``OTEL_EXPORTER_OTLP_TIMEOUT``, ``OTEL_BSP_*`` for the batch processor.
    """
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    exporter = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider
