"""X-Request-ID: accepted or generated, echoed in the header and in every refusal's body."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from tests.service.conftest import make_client, make_settings

HEX32 = re.compile(r"[0-9a-f]{32}")
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_a_client_id_comes_back_in_the_header(client: TestClient, red_jpeg: bytes) -> None:
    r = client.post("/predict", files={"file": ("a.jpg", red_jpeg)}, headers={"X-Request-ID": "order-42/item_7"})
    assert r.status_code == 200 and r.headers["x-request-id"] == "order-42/item_7"
    assert "request_id" not in r.json()  # answers keep their shape; the id travels in the header


def test_without_one_each_request_gets_a_fresh_id(client: TestClient) -> None:
    ids = [client.get("/healthz").headers["x-request-id"] for _ in range(3)]
    assert all(HEX32.fullmatch(i) for i in ids) and len(set(ids)) == 3


@pytest.mark.parametrize("bad", ["has space", "x" * 129, 'quote"d', "tab\tbed", "é-accent".encode()])
def test_an_unsafe_client_id_is_replaced_not_echoed(client: TestClient, bad: str | bytes) -> None:
    r = client.get("/healthz", headers={"X-Request-ID": bad})
    assert HEX32.fullmatch(r.headers["x-request-id"])


def test_a_traceparent_gives_its_trace_id_unless_an_id_is_sent(client: TestClient) -> None:
    assert client.get("/healthz", headers={"traceparent": TRACEPARENT}).headers["x-request-id"] == TRACEPARENT[3:35]
    both = {"traceparent": TRACEPARENT, "X-Request-ID": "mine"}
    assert client.get("/healthz", headers=both).headers["x-request-id"] == "mine"
    broken = client.get("/healthz", headers={"traceparent": "00-" + "0" * 32 + "-00f067aa0ba902b7-01"})
    assert broken.headers["x-request-id"] != "0" * 32


def refusals(client: TestClient, red_jpeg: bytes) -> dict[str, httpx.Response]:
    big = b"\xff" * 2048
    return {
        "415": client.post("/predict", content=b"<svg></svg>"),
        "400": client.post("/predict", json={"image": "!!!"}),
        "413": client.post("/predict", content=big, headers={"content-length": str(len(big))}),
        "422": client.post("/predict?top_k=0", files={"file": ("a.jpg", red_jpeg)}),
        "404": client.get("/nowhere"),
        "405": client.get("/predict"),
    }


def test_every_refusal_carries_the_id_in_body_and_header(rgb_model_path: Path, red_jpeg: bytes) -> None:
    with make_client(rgb_model_path, max_upload_bytes=1024) as client:
        for status, r in refusals(client, red_jpeg).items():
            assert str(r.status_code) == status, (status, r.text)
            error = r.json()["error"]
            assert error["request_id"] == r.headers["x-request-id"], status
            assert set(error) == {"code", "message", "request_id"}
        r = client.post("/predict", content=b"x", headers={"X-Request-ID": "abc"})
        assert r.json()["error"]["request_id"] == "abc" == r.headers["x-request-id"]


def test_unauthorised_and_not_ready_refusals_carry_it_too(rgb_model_path: Path, red_jpeg: bytes) -> None:
    with make_client(rgb_model_path, api_key="s3cret") as client:
        r = client.post("/predict", files={"file": ("a.jpg", red_jpeg)}, headers={"X-Request-ID": "who"})
        assert r.status_code == 401 and r.json()["error"]["request_id"] == "who"
        assert r.headers["www-authenticate"] == "Bearer"  # the refusal's own headers survive
    cold = TestClient(create_app(make_settings(rgb_model_path)))  # lifespan not run: still loading
    r = cold.get("/readyz", headers={"X-Request-ID": "early"})
    assert r.status_code == 503 and r.json()["error"]["request_id"] == "early" == r.headers["x-request-id"]


def test_an_unexpected_failure_still_answers_with_the_id(rgb_model_path: Path) -> None:
    app = create_app(make_settings(rgb_model_path))

    def boom() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/boom", boom)
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/boom", headers={"X-Request-ID": "bug-1"})
    assert r.status_code == 500 and r.headers["x-request-id"] == "bug-1"
    assert r.json()["error"] == {
        "code": "internal_error",
        "message": "the server failed on this request; it has been logged",
        "request_id": "bug-1",
    }


def test_batch_items_keep_their_shape_and_the_batch_has_an_id(client: TestClient, red_jpeg: bytes) -> None:
    files = [("files", ("a.jpg", red_jpeg)), ("files", ("b.txt", b"not an image"))]
    r = client.post("/predict/batch", files=files, headers={"X-Request-ID": "batch-9"})
    assert r.status_code == 200 and r.headers["x-request-id"] == "batch-9"
    assert set(r.json()[1]["error"]) == {"code", "message"}


def test_browsers_may_send_and_read_the_id(rgb_model_path: Path) -> None:
    with make_client(rgb_model_path, cors_origins="https://app.example") as client:  # CORS is off by default
        _preflight_and_expose(client)


def _preflight_and_expose(client: TestClient) -> None:
    pre = client.options(
        "/predict",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-request-id,traceparent",
        },
    )
    assert pre.status_code == 200
    r = client.get("/healthz", headers={"Origin": "https://app.example"})
    assert "x-request-id" in r.headers["access-control-expose-headers"].lower()


def test_openapi_documents_the_id_in_refusals(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    detail = spec["components"]["schemas"]["RefusalDetail"]
    assert {"code", "message", "request_id"} <= set(detail["required"])
    refused = spec["paths"]["/predict"]["post"]["responses"]["415"]["content"]["application/json"]["schema"]
    assert refused["$ref"].endswith("/Refusal")
