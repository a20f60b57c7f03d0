"""Optional OpenTelemetry traces: a server span per request with receive, decode, preprocess,
queue, inference and respond inside it, exported by OTLP/HTTP when an endpoint is set.

Off by default. While off, the SDK and the exporter are never imported, and
each hook (``span``, ``record``, ``annotate``) costs one ContextVar lookup.
On, each request's server span continues the client's W3C ``traceparent``
when it sent one. The tracer travels in a ContextVar set per request, not in a
global, so apps with and without tracing can share one process (the tests do).

Queue and inference are recorded after the fact with explicit times: one
onnxruntime call serves a whole micro-batch, so every request in it gets its
own ``inference`` span for the same interval, tagged with the batch size.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported for real only when tracing is on
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

    from service.settings import Settings

_tracer: ContextVar[Tracer | None] = ContextVar("tracer", default=None)
_NOOP: AbstractContextManager[Any] = nullcontext()


def active() -> bool:
    return _tracer.get() is not None


def span(name: str) -> AbstractContextManager[Any]:
    """A child span of whatever is current (``with tracing.span("decode"):``); a shared no-op when off."""
    tracer = _tracer.get()
    return _NOOP if tracer is None else tracer.start_as_current_span(name)


def record(name: str, start_ns: int, end_ns: int, **attributes: Any) -> None:
    """A span that already happened, from ``time.time_ns()`` stamps."""
    tracer = _tracer.get()
    if tracer is not None:
        tracer.start_span(name, start_time=start_ns, attributes=attributes).end(end_time=end_ns)


def annotate(**attributes: Any) -> None:
    """Attributes on the current span (image format and size on ``decode``, ...)."""
    if _tracer.get() is not None:
        from opentelemetry import trace

        trace.get_current_span().set_attributes({k: v for k, v in attributes.items() if v is not None})


class NoTrace:
    """What a request carries while tracing is off: every call does nothing."""

    trace_id: str | None = None

    def responding(self) -> None:
        pass

    def responded(self) -> None:
        pass

    def finish(self, route: str | None, status: int, request_id: str) -> None:
        pass


NO_TRACE = NoTrace()


class RequestTrace(NoTrace):
    """One request's server span, current while the request runs; ``respond`` covers the answer's bytes."""

    def __init__(self, tracer: Tracer, method: str, headers: dict[str, str]) -> None:
        from opentelemetry import context, trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self.tracer, self.method = tracer, method
        parent = TraceContextTextMapPropagator().extract(headers)
        self.span: Span = tracer.start_span(
            method, context=parent, kind=trace.SpanKind.SERVER, attributes={"http.request.method": method}
        )
        self.context = trace.set_span_in_context(self.span, parent)
        self._token = context.attach(self.context)
        self.trace_id = format(self.span.get_span_context().trace_id, "032x")
        self._respond: Span | None = None

    def responding(self) -> None:
        self._respond = self.tracer.start_span("respond", context=self.context)

    def responded(self) -> None:
        if self._respond is not None:
            self._respond.end()
            self._respond = None

    def finish(self, route: str | None, status: int, request_id: str) -> None:
        from opentelemetry import context
        from opentelemetry.trace import Status, StatusCode

        self.responded()
        if route:  # the template, never the raw path a client controls
            self.span.update_name(f"{self.method} {route}")
            self.span.set_attribute("http.route", route)
        self.span.set_attribute("http.response.status_code", status)
        self.span.set_attribute("request.id", request_id)
        if status >= 500:
            self.span.set_status(Status(StatusCode.ERROR))
        self.span.end()
        context.detach(self._token)


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

    def start_request(self, method: str, headers: dict[str, str]) -> NoTrace:
        _tracer.set(self.tracer)
        if self.tracer is None:
            return NO_TRACE
        return RequestTrace(self.tracer, method, headers)

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
