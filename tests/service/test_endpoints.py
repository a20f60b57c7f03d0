"""Every endpoint's contract: body forms, parameters, batch, auth, limits, readiness, metrics, OpenAPI."""

from __future__ import annotations

import base64
import select
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service.app import create_app
from tests.service.conftest import encode, make_client, make_settings, serve

BLUE_PNG = encode(Image.new("RGB", (40, 90), (20, 30, 230)), "PNG")


def test_answer_shape_and_default_top_k(client: TestClient, red_jpeg: bytes) -> None:
    body = client.post("/predict", files={"file": ("a.jpg", red_jpeg, "image/jpeg")}).json()
    assert set(body) == {"label", "confidence", "unknown", "calibrated", "top_k", "model", "timing_ms"}
    assert body["unknown"] is False and body["calibrated"] is False  # MIN_CONFIDENCE 0; the tiny model has no fit
    assert body["label"] == "red" and len(body["top_k"]) == 3
    assert all(isinstance(x["score"], float) for x in body["top_k"])
    assert abs(sum(x["score"] for x in body["top_k"]) - 1.0) < 1e-5
    assert set(body["timing_ms"]) == {"decode", "preprocess", "queue", "inference", "total"}


def test_any_single_file_field_name(client: TestClient) -> None:
    r = client.post("/predict", files={"image_upload": ("b.png", BLUE_PNG, "application/octet-stream")})
    assert r.status_code == 200 and r.json()["label"] == "blue"


@pytest.mark.parametrize("ctype", ["image/png", "image/jpeg", "application/octet-stream", "image/jpg"])
def test_raw_body_any_declared_type(client: TestClient, ctype: str) -> None:
    r = client.post("/predict?top_k=1", content=BLUE_PNG, headers={"content-type": ctype})
    assert r.status_code == 200 and r.json()["label"] == "blue" and len(r.json()["top_k"]) == 1


@pytest.mark.parametrize("encoding", ["plain", "data_uri", "urlsafe_unpadded", "with_newlines"])
def test_json_base64_forms(client: TestClient, encoding: str) -> None:
    b64 = base64.b64encode(BLUE_PNG).decode()
    value = {
        "plain": b64,
        "data_uri": f"data:image/png;base64,{b64}",
        "urlsafe_unpadded": base64.urlsafe_b64encode(BLUE_PNG).decode().rstrip("="),
        "with_newlines": "\n".join(b64[i : i + 76] for i in range(0, len(b64), 76)),
    }[encoding]
    r = client.post("/predict", json={"image": value})
    assert r.status_code == 200, r.text
    assert r.json()["label"] == "blue"


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"json": {"image": "!!!not base64!!!"}}, 400, "invalid_base64"),
        ({"json": {"image": ""}}, 422, "invalid_parameters"),
        ({"json": {"picture": "AAAA"}}, 422, "invalid_parameters"),
        ({"json": ["AAAA"]}, 422, "invalid_parameters"),
        ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 400, "invalid_json"),
        ({"json": {"image": "data:image/png,plain"}}, 400, "invalid_base64"),
        ({"files": {"a": ("a.png", BLUE_PNG), "b": ("b.png", BLUE_PNG)}}, 400, "missing_file"),
        (
            {
                "content": b'--XX\r\nContent-Disposition: form-data; name="note"\r\n\r\nhi\r\n--XX--\r\n',
                "headers": {"content-type": "multipart/form-data; boundary=XX"},
            },
            400,
            "missing_file",
        ),
        ({"data": {"note": "a form, not an image"}}, 415, "unsupported_media_type"),
    ],
)
def test_bad_bodies_are_json_errors(client: TestClient, kwargs: dict, status: int, code: str) -> None:
    r = client.post("/predict", **kwargs)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code


@pytest.mark.parametrize("query", ["top_k=0", "top_k=4", "top_k=-1", "top_k=abc", "top_k=1.5"])
def test_bad_top_k_is_422(client: TestClient, query: str) -> None:
    r = client.post(f"/predict?{query}", content=BLUE_PNG, headers={"content-type": "image/png"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_parameters"


def test_batch_multipart_in_order_with_item_errors(client: TestClient, red_jpeg: bytes) -> None:
    files = [("files", ("r.jpg", red_jpeg)), ("files", ("x.txt", b"hello")), ("other", ("b.png", BLUE_PNG))]
    r = client.post("/predict/batch?top_k=2", files=files)
    assert r.status_code == 200, r.text
    first, second, third = r.json()
    assert first["label"] == "red" and len(first["top_k"]) == 2
    assert second["error"] == {"code": "unsupported_media_type", "message": second["error"]["message"]}
    assert third["label"] == "blue"
    # every answer names its input, so a client can match answers to files without counting
    assert [a["item"] for a in (first, second, third)] == [
        {"index": 0, "field": "files", "filename": "r.jpg"},
        {"index": 1, "field": "files", "filename": "x.txt"},
        {"index": 2, "field": "other", "filename": "b.png"},
    ]


def test_batch_json_with_bad_base64_item(client: TestClient, red_jpeg: bytes) -> None:
    images = [base64.b64encode(BLUE_PNG).decode(), "%%%", base64.b64encode(red_jpeg).decode()]
    answers = client.post("/predict/batch", json={"images": images}).json()
    assert [a.get("label") for a in answers] == ["blue", None, "red"]
    assert answers[1]["error"]["code"] == "invalid_base64"
    assert [a["item"] for a in answers] == [{"index": i, "field": f"images[{i}]", "filename": None} for i in range(3)]


def test_batch_limits(rgb_model_path: Path) -> None:
    with make_client(rgb_model_path, max_batch_items=2) as c:
        b64 = base64.b64encode(BLUE_PNG).decode()
        assert c.post("/predict/batch", json={"images": [b64] * 2}).status_code == 200
        r = c.post("/predict/batch", json={"images": [b64] * 3})
        assert r.status_code == 422 and r.json()["error"]["code"] == "too_many_images"
        r = c.post("/predict/batch", files=[("f", ("a.png", BLUE_PNG))] * 3)
        assert r.status_code == 422 and r.json()["error"]["code"] == "too_many_images"
        assert c.post("/predict/batch", json={"images": []}).status_code == 422
        assert c.post("/predict/batch", content=BLUE_PNG, headers={"content-type": "image/png"}).status_code == 415


@pytest.fixture(scope="module")
def small_limit_client(rgb_model_path: Path) -> Iterator[TestClient]:
    with make_client(rgb_model_path, max_upload_bytes=10_000) as c:
        yield c


def test_declared_length_over_limit_is_413(small_limit_client: TestClient) -> None:
    big = b"\xff\xd8" + b"\0" * 20_000
    r = small_limit_client.post("/predict", content=big, headers={"content-type": "image/jpeg"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
    r = small_limit_client.post("/predict", files={"file": ("big.jpg", big)})
    assert r.status_code == 413


def test_chunked_body_without_length_is_413(small_limit_client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b"\0" * 4096

    r = small_limit_client.post("/predict", content=chunks(), headers={"content-type": "application/octet-stream"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
    assert "content-length" not in {k.lower() for k in r.request.headers}


@pytest.mark.parametrize("ctype", ["application/octet-stream", "multipart/form-data; boundary=XX"])
def test_streamed_body_is_refused_before_it_ends(rgb_model_path: Path, ctype: str) -> None:
    """A chunked upload over a real socket: the 413 arrives while the client is still sending."""
    chunk, most = b"\0" * 4096, 2000  # up to 8 MB against a 10 kB limit
    with serve(make_settings(rgb_model_path, max_upload_bytes=10_000)) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(
                f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\n"
                "Transfer-Encoding: chunked\r\n\r\n".encode()
            )
            if ctype.startswith("multipart"):
                head = b'--XX\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\n'
                sock.sendall(b"%x\r\n%s\r\n" % (len(head), head))
            sent = 0
            while sent < most * len(chunk) and not select.select([sock], [], [], 0.002)[0]:
                try:
                    sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                except (BrokenPipeError, ConnectionResetError):
                    break
                sent += len(chunk)
            answer = b""
            while b"}}" not in answer and (part := sock.recv(65536)):
                answer += part
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"payload_too_large" in answer
    assert sent < most * len(chunk)  # the server answered before the body was complete


def test_json_over_limit_is_413(small_limit_client: TestClient) -> None:
    r = small_limit_client.post("/predict", json={"image": "A" * 20_000})
    assert r.status_code == 413


def test_pixel_limit_from_settings(rgb_model_path: Path) -> None:
    with make_client(rgb_model_path, max_pixels=1000) as c:
        ok = encode(Image.new("RGB", (30, 30), "red"), "PNG")
        big = encode(Image.new("RGB", (40, 30), "red"), "PNG")
        assert c.post("/predict", content=ok).status_code == 200
        r = c.post("/predict", content=big)
        assert r.status_code == 413 and r.json()["error"]["code"] == "image_too_large"


def test_api_key(rgb_model_path: Path) -> None:
    with make_client(rgb_model_path, api_key="s3cret") as c:
        r = c.post("/predict", content=BLUE_PNG)
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
        assert c.post("/predict", content=BLUE_PNG, headers={"X-API-Key": "wrong"}).status_code == 401
        assert c.post("/predict", content=BLUE_PNG, headers={"X-API-Key": "s3cret"}).status_code == 200
        assert c.post("/predict", content=BLUE_PNG, headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert c.post("/predict/batch", json={"images": []}).status_code == 401
        assert c.get("/v1/model").status_code == 401
        assert c.get("/v1/model", headers={"X-API-Key": "s3cret"}).status_code == 200
        assert c.get("/healthz").status_code == 200 and c.get("/readyz").status_code == 200
        assert c.get("/").status_code == 200


def test_not_ready_is_503(rgb_model_path: Path) -> None:
    c = TestClient(create_app(make_settings(rgb_model_path)))  # no `with`: the lifespan has not run
    r = c.get("/readyz")
    assert r.status_code == 503 and r.json()["error"]["code"] == "not_ready"
    assert c.post("/predict", content=BLUE_PNG).status_code == 503
    assert c.get("/v1/model").status_code == 503
    assert c.get("/healthz").status_code == 200


def test_model_description(client: TestClient) -> None:
    m = client.get("/v1/model").json()
    assert m["labels"] == ["red", "green", "blue"] and m["name"] == "tiny-rgb" and m["version"] == "7"
    assert m["input"]["color"] == "RGB" and m["input"]["height"] == 32
    assert m["preprocess"]["crop"] == [32, 32] and m["preprocess"]["resize_shorter"] == 37
    assert m["parity"]["top1_agreement"] == 1.0
    assert m["serving"]["max_upload_bytes"] == 20 * 1024 * 1024 and "JPEG" in m["serving"]["formats"]


def test_metrics_count_requests_stages_and_batches(client: TestClient, red_jpeg: bytes) -> None:
    client.post("/predict", content=red_jpeg)
    client.post("/predict", content=b"not an image")
    text = client.get("/metrics").text
    assert 'http_requests_total{method="POST",route="/predict",status="200"}' in text
    assert 'http_requests_total{method="POST",route="/predict",status="415"}' in text
    assert 'http_request_duration_seconds_bucket{le="0.005",method="POST",route="/predict"}' in text
    for stage in ("decode", "preprocess", "queue", "inference"):
        assert f'predict_stage_seconds_count{{stage="{stage}"}}' in text
    assert "inference_batch_size_count" in text and "http_requests_in_flight" in text
    assert 'predict_images_total{outcome="unsupported_media_type"}' in text


def test_unknown_path_is_json_404(client: TestClient) -> None:
    r = client.get("/nope")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert 'route="unmatched"' in client.get("/metrics").text


def test_openapi_documents_routes_and_bodies(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert {"/predict", "/predict/batch", "/healthz", "/readyz", "/v1/model", "/metrics", "/"} <= set(spec["paths"])
    body = spec["paths"]["/predict"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "image/*", "application/octet-stream", "application/json"} <= set(body)
    assert "file" in body["multipart/form-data"]["schema"]["properties"]
    assert "image" in body["application/json"]["schema"]["properties"]
    responses = spec["paths"]["/predict"]["post"]["responses"]
    assert {"200", "400", "401", "413", "415", "422", "503"} <= set(responses)
    assert "Prediction" in spec["components"]["schemas"]
    batch = spec["paths"]["/predict/batch"]["post"]["requestBody"]["content"]
    assert "images" in batch["application/json"]["schema"]["properties"]


def test_grayscale_model_answers_every_endpoint(gray_client: TestClient) -> None:
    white = encode(Image.new("RGB", (30, 30), "white"), "PNG")
    black = encode(Image.new("L", (50, 20), 0), "JPEG")
    assert gray_client.post("/predict", content=white).json()["label"] == "light"
    r = gray_client.post("/predict", json={"image": base64.b64encode(black).decode()})
    assert r.json()["label"] == "dark" and len(r.json()["top_k"]) == 2
    answers = gray_client.post("/predict/batch", files=[("f", ("w.png", white)), ("f", ("b.jpg", black))]).json()
    assert [a["label"] for a in answers] == ["light", "dark"]
    assert gray_client.post("/predict?top_k=3", content=white).status_code == 422
    m = gray_client.get("/v1/model").json()
    assert m["input"]["color"] == "L" and m["input"]["channels"] == 1 and m["labels"] == ["dark", "light"]
    for path in ("/healthz", "/readyz", "/metrics", "/", "/openapi.json"):
        assert gray_client.get(path).status_code == 200


def test_cors_is_off_by_default_and_lets_configured_origins_call(client: TestClient, rgb_model_path: Path) -> None:
    r = client.post("/predict", content=BLUE_PNG, headers={"Origin": "https://app.example"})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers  # same-origin only
    preflight = {
        "Origin": "https://app.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-api-key",
    }
    assert "access-control-allow-origin" not in client.options("/predict", headers=preflight).headers
    with make_client(rgb_model_path, cors_origins="https://app.example") as c:
        pre = c.options("/predict", headers=preflight)
        assert pre.status_code == 200 and pre.headers["access-control-allow-origin"] == "https://app.example"
        r = c.post("/predict", content=BLUE_PNG, headers={"Origin": "https://app.example"})
        assert r.headers["access-control-allow-origin"] == "https://app.example"
        r = c.post("/predict", content=BLUE_PNG, headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in r.headers
