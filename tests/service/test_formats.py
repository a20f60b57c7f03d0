"""``formats`` in /v1/model lists what decodes: every listed format has an image here that the service classifies."""

from __future__ import annotations

import io

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from core.imaging import ALLOWED_FORMATS

RED = (220, 30, 30)


def red_file(fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), RED).save(buf, fmt, **params)
    return buf.getvalue()


def test_v1_model_lists_exactly_the_decoded_formats(client: TestClient) -> None:
    listed = client.get("/v1/model").json()["serving"]["formats"]
    assert listed == list(ALLOWED_FORMATS)
    assert {"JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"} <= set(listed)
    # Pillow identifies these, but they never decode here (no handler, or identify-only): not advertised.
    assert not {"MPEG", "GRIB", "HDF5", "BUFR", "WMF", "EPS", "PDF", "PSD"} & set(listed)


@pytest.mark.parametrize("fmt", ALLOWED_FORMATS)
def test_every_listed_format_decodes_and_is_classified(client: TestClient, fmt: str) -> None:
    assert fmt in Image.SAVE, f"{fmt} is listed but this test cannot make an image of it"
    r = client.post("/predict", content=red_file(fmt), headers={"content-type": "application/octet-stream"})
    assert r.status_code == 200, r.text
    assert r.json()["label"] == "red"


def test_multi_picture_jpeg_from_a_camera_decodes_as_jpeg(client: TestClient) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), RED).save(buf, "MPO", save_all=True, append_images=[Image.new("RGB", (64, 48))])
    r = client.post("/predict", content=buf.getvalue(), headers={"content-type": "image/jpeg"})
    assert r.status_code == 200 and r.json()["label"] == "red"


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("mpeg", b"\x00\x00\x01\xb3" + b"\x14\x00\xf0\x13" + b"\xff" * 64),  # an MPEG sequence header
        ("tga", red_file("TGA")),  # decodable by Pillow, but no camera's output: not accepted
        ("pcx", red_file("PCX")),
    ],
)
def test_unlisted_formats_are_refused_as_not_an_image(client: TestClient, name: str, data: bytes) -> None:
    r = client.post("/predict", content=data, headers={"content-type": "application/octet-stream"})
    assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type", name
