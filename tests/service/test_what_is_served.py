"""What a client can learn about the served file, hints for common client mistakes, routes in metrics, previews."""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.service.badmodels import write_described
from tests.service.conftest import encode, make_client, make_settings, serve


@pytest.fixture(scope="module")
def int8_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_described(tmp_path_factory.mktemp("int8") / "model.int8.onnx", precision="int8", opset=17)


@pytest.fixture(scope="module")
def int8_client(int8_path: Path) -> Iterator[TestClient]:
    with make_client(int8_path) as c:
        yield c


def test_v1_model_and_every_answer_name_the_file(int8_client: TestClient, int8_path: Path, red_jpeg: bytes) -> None:
    sha = hashlib.sha256(int8_path.read_bytes()).hexdigest()
    m = int8_client.get("/v1/model").json()
    assert (m["file"], m["sha256"], m["precision"], m["opset"]) == ("model.int8.onnx", sha, "int8", 17)
    one = int8_client.post("/predict", files={"file": ("r.jpg", red_jpeg)}).json()
    assert one["model"] == {"name": "tiny-rgb", "version": "7", "precision": "int8", "sha256": sha}
    batch = int8_client.post("/predict/batch", files=[("files", ("r.jpg", red_jpeg))]).json()
    assert batch[0]["model"]["sha256"] == sha and batch[0]["model"]["precision"] == "int8"


def test_two_files_of_one_run_are_told_apart(tmp_path: Path, int8_path: Path) -> None:
    fp32 = write_described(tmp_path / "model.onnx", precision="fp32", opset=17)
    with make_client(fp32) as c:
        a = c.get("/v1/model").json()
    with make_client(int8_path) as c:
        b = c.get("/v1/model").json()
    assert a["name"] == b["name"] and a["version"] == b["version"]
    assert a["sha256"] != b["sha256"] and (a["precision"], b["precision"]) == ("fp32", "int8")


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs the curl command")
def test_curl_d_upload_is_told_to_use_data_binary(rgb_model_path: Path, tmp_path: Path) -> None:
    """`curl -d @photo.png` strips the file's line breaks and sends it as a form: the answer says what to type."""
    photo = tmp_path / "photo.png"
    Image.effect_noise((64, 48), 80).convert("RGB").save(photo)
    assert b"\n" in photo.read_bytes()  # the PNG signature alone holds CR LF
    with serve(make_settings(rgb_model_path)) as url:
        wrong = subprocess.run(
            ["curl", "-s", "-w", "\n%{http_code}", "-d", f"@{photo}", f"{url}/predict"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        right = subprocess.run(
            ["curl", "-s", "-w", "\n%{http_code}", "--data-binary", f"@{photo}", f"{url}/predict"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    body, status = wrong.stdout.rsplit("\n", 1)
    assert status == "415" and "--data-binary" in body and "curl -d" in body
    assert right.stdout.rsplit("\n", 1)[1] == "200"


def test_hint_only_replaces_a_refusal(client: TestClient) -> None:
    """An intact image sent with a form type is classified as before; other non-images get no curl hint."""
    png = encode(Image.new("RGB", (40, 30), (220, 30, 30)), "PNG")
    r = client.post("/predict", content=png, headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200 and r.json()["label"] == "red"
    text = client.post("/predict", content=b"hello world", headers={"content-type": "text/plain"})
    assert text.status_code == 415 and "--data-binary" not in text.json()["error"]["message"]


def test_metrics_label_docs_openapi_and_assets(client: TestClient) -> None:
    for path in ("/docs", "/redoc", "/openapi.json", "/docs-assets/swagger-ui.css", "/docs-assets/swagger-init.js"):
        assert client.get(path).status_code == 200, path
    client.get("/no-such-page")
    lines = [line for line in client.get("/metrics").text.splitlines() if line.startswith("http_requests_total{")]
    routes = {line.split('route="')[1].split('"')[0] for line in lines}
    assert {"/docs", "/redoc", "/openapi.json", "/docs-assets/{path}", "/docs-assets/swagger-init.js"} <= routes
    assert 'route="unmatched",status="404"' in "".join(lines)
    assert not any('route="unmatched",status="200"' in line for line in lines)


def test_preview_is_an_upright_jpeg_of_what_the_model_was_given(client: TestClient) -> None:
    img = Image.new("RGBA", (900, 300), (220, 30, 30, 255))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees when displayed: a portrait photo from a phone
    r = client.post("/preview", files={"file": ("p.png", encode(img.convert("RGB"), "JPEG", exif=exif))})
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    out = Image.open(io.BytesIO(r.content))
    assert out.format == "JPEG" and out.size == (171, 512)  # upright, longest side 512
    assert client.post("/preview", content=b"not an image").status_code == 415
