"""OpenTelemetry spans, checked with the SDK's in-memory exporter and with a real OTLP/HTTP
export to a collector stand-in on loopback; off by default, with the SDK never imported."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from PIL import Image

from service.app import create_app
from service.tracing import Tracing
from tests.service.conftest import encode, make_settings

ROOT = Path(__file__).resolve().parents[2]
BLUE_PNG = encode(Image.new("RGB", (40, 90), (20, 30, 230)), "PNG")
STAGES = ["receive", "decode", "preprocess", "queue", "inference", "respond"]
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture(scope="module")
def traced(rgb_model_path: Path) -> Iterator[tuple[TestClient, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with TestClient(create_app(make_settings(rgb_model_path), Tracing(provider))) as client:
        yield client, exporter


def spans_of(exporter: InMemorySpanExporter, request: Any) -> list[ReadableSpan]:
    """The spans of one request, found through the id it was answered with (its trace id)."""
    trace_id = int(request.headers["x-request-id"], 16)
    found = [s for s in exporter.get_finished_spans() if s.context.trace_id == trace_id]
    return sorted(found, key=lambda s: s.start_time or 0)


def server_span(spans: list[ReadableSpan]) -> ReadableSpan:
    (server,) = [s for s in spans if s.kind == SpanKind.SERVER]
    return server


def test_a_prediction_has_a_span_per_stage_inside_the_server_span(traced: Any) -> None:
    client, exporter = traced
    r = client.post("/predict", content=BLUE_PNG)
    assert r.status_code == 200
    spans = spans_of(exporter, r)  # the request id is the trace id when the client sent none
    server = server_span(spans)
    assert server.name == "POST /predict" and server.parent is None
    assert server.attributes is not None and server.attributes["http.route"] == "/predict"
    assert server.attributes["http.response.status_code"] == 200
    assert server.attributes["request.id"] == r.headers["x-request-id"]
    stages = {s.name: s for s in spans if s.name in STAGES}
    assert sorted(stages) == sorted(STAGES)
    for s in stages.values():  # each within the server span, in time and in the tree
        assert s.start_time is not None and s.end_time is not None
        assert server.start_time is not None and server.end_time is not None
        assert server.start_time <= s.start_time <= s.end_time <= server.end_time, s.name
        assert s.parent is not None and s.parent.span_id == server.context.span_id, s.name
    assert len(spans) == 1 + len(STAGES)  # FastAPI's operation spans are off
    order = [stages[n].start_time for n in STAGES]
    assert order == sorted(order)  # receive, decode, preprocess, queue, inference, respond
    decode = stages["decode"].attributes or {}
    assert (decode["image.format"], decode["image.width"], decode["image.height"]) == ("PNG", 40, 90)
    assert (stages["inference"].attributes or {})["batch_size"] == 1


def test_a_client_traceparent_is_continued_and_the_id_stays_the_clients(traced: Any) -> None:
    client, exporter = traced
    r = client.post("/predict", content=BLUE_PNG, headers={"traceparent": TRACEPARENT, "X-Request-ID": "c-1"})
    assert r.headers["x-request-id"] == "c-1"
    spans = [s for s in exporter.get_finished_spans() if s.context.trace_id == int(TRACEPARENT[3:35], 16)]
    server = server_span(spans)
    assert server.parent is not None and server.parent.span_id == int(TRACEPARENT[36:52], 16)
    assert (server.attributes or {})["request.id"] == "c-1"
    assert {s.name for s in spans} >= set(STAGES)


def test_a_batch_gets_a_decode_per_image_and_inference_spans_carry_the_batch_size(traced: Any) -> None:
    client, exporter = traced
    files = [("files", (f"{i}.png", BLUE_PNG)) for i in range(3)]
    r = client.post("/predict/batch", files=files)
    spans = spans_of(exporter, r)
    assert [s.name for s in spans].count("decode") == 3
    sizes = [(s.attributes or {})["batch_size"] for s in spans if s.name == "inference"]
    assert len(sizes) == 3 and all(1 <= n <= 3 for n in sizes)


def test_a_refused_image_marks_its_decode_span_and_not_the_server(traced: Any) -> None:
    client, exporter = traced
    r = client.post("/predict", content=b"%PDF-1.4")
    assert r.status_code == 415
    spans = spans_of(exporter, r)
    (decode,) = [s for s in spans if s.name == "decode"]
    assert decode.status.status_code == StatusCode.ERROR and not decode.status.description
    assert (decode.attributes or {})["error.type"] == "unsupported_media_type"
    assert decode.events == ()  # no exception event: its message could quote the client's bytes
    assert server_span(spans).status.status_code != StatusCode.ERROR  # a 4xx is the client's mistake
    assert not {"queue", "inference"} & {s.name for s in spans}


def test_tracing_off_imports_no_sdk_and_records_nothing(rgb_model_path: Path) -> None:
    """The default: no OTLP endpoint, so no provider, no SDK import, no FastAPI telemetry."""
    code = f"""
import sys
from fastapi.testclient import TestClient
from service.app import create_app
from service.settings import Settings
from service import tracing
app = create_app(Settings(model_path={str(rgb_model_path)!r}, intra_op_threads=1))
with TestClient(app) as client:
    assert client.post("/predict", content={BLUE_PNG!r}).status_code == 200
    assert not tracing.active()
loaded = sorted(m for m in sys.modules if m.startswith(("opentelemetry.sdk", "opentelemetry.exporter")))
assert loaded == [], loaded
"""
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)


class Collector(BaseHTTPRequestHandler):
    """An OTLP/HTTP receiver: keeps every POST /v1/traces body."""

    received: list[tuple[str, bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Collector.received.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


def test_spans_are_exported_over_otlp_http_when_an_endpoint_is_set(rgb_model_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    settings = make_settings(rgb_model_path, otel_exporter_otlp_endpoint=endpoint, otel_service_name="classifier-test")
    try:
        with TestClient(create_app(settings)) as client:
            rid = client.post("/predict", content=BLUE_PNG).headers["x-request-id"]
        # leaving the client stops the app, whose shutdown flushes the batch processor
    finally:
        server.shutdown()
        thread.join(timeout=5)
    assert Collector.received and {path for path, _ in Collector.received} == {"/v1/traces"}
    names, services, trace_ids = set(), set(), set()
    for _, body in Collector.received:
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            attrs = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            services.add(attrs.get("service.name"))
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    names.add(span.name)
                    trace_ids.add(span.trace_id.hex())
    assert services == {"classifier-test"}
    assert {"POST /predict", *STAGES} <= names
    assert rid in trace_ids
