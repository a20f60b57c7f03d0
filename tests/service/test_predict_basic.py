"""The walking skeleton's service contract: the seed client's call, raw bodies, clean errors."""

from __future__ import annotations

import hashlib
from pathlib import Path

from fastapi.testclient import TestClient
from PIL import Image

from tests.service.conftest import encode


def test_seed_client_multipart_call(client: TestClient, red_jpeg: bytes, rgb_model_path: Path) -> None:
    # The reference project's documented curl: field "file", bogus type image/jpg.
    r = client.post(
        "/predict", files={"file": ("elephant.jpg", red_jpeg, "image/jpg")}, headers={"accept": "application/json"}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["label"] == "red"
    assert isinstance(body["confidence"], float) and 0.5 < body["confidence"] <= 1.0
    assert [x["label"] for x in body["top_k"]][0] == "red" and len(body["top_k"]) == 3
    sha256 = hashlib.sha256(rgb_model_path.read_bytes()).hexdigest()
    assert body["model"] == {"name": "tiny-rgb", "version": "7", "precision": None, "sha256": sha256}
    assert set(body["timing_ms"]) >= {"decode", "preprocess", "inference"}


def test_raw_body_is_accepted(client: TestClient) -> None:
    png = encode(Image.new("RGB", (40, 90), (20, 30, 230)), "PNG")
    r = client.post("/predict", content=png, headers={"content-type": "application/octet-stream"})
    assert r.status_code == 200 and r.json()["label"] == "blue"


def test_not_an_image_is_415_json(client: TestClient) -> None:
    r = client.post("/predict", files={"file": ("x.jpg", b"<html>hi</html>", "image/jpeg")})
    assert r.status_code == 415
    assert r.json()["error"]["code"] == "unsupported_media_type"


def test_grayscale_model_answers(gray_client: TestClient) -> None:
    r = gray_client.post(
        "/predict?top_k=2", files={"file": ("w.png", encode(Image.new("RGB", (30, 30), "white"), "PNG"))}
    )
    assert r.status_code == 200 and r.json()["label"] == "light"


def test_health_and_ready(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json()["status"] == "ready"
