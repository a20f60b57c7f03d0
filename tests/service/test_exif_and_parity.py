"""The served numbers are the model's numbers: EXIF-rotated copies agree with the upright image,
and probabilities equal onnxruntime's on tensors built by an independent reference preprocessing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.service.conftest import encode, make_client

# Pillow's exif_transpose applies these for orientations 2..8; the stored image is the inverse of it.
TO_STORED = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def quadrants(size: tuple[int, int] = (96, 64)) -> Image.Image:
    """An image whose every rotation or flip looks different."""
    w, h = size
    img = Image.new("RGB", size, (240, 240, 240))
    img.paste((230, 20, 20), (0, 0, w // 2, h // 2))
    img.paste((20, 200, 40), (w // 2, 0, w, h // 3))
    img.paste((30, 40, 220), (0, h // 2, w // 3, h))
    return img


def with_orientation(upright: Image.Image, orientation: int, fmt: str) -> bytes:
    stored = upright if orientation == 1 else upright.transpose(TO_STORED[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(stored, fmt, exif=exif.tobytes(), **({"quality": 95} if fmt == "JPEG" else {}))


@pytest.fixture(scope="module")
def spatial(spatial_model_path: Path) -> Iterator[TestClient]:
    with make_client(spatial_model_path) as c:
        yield c


def scores(client: TestClient, data: bytes) -> np.ndarray:
    r = client.post("/predict?top_k=6", files={"file": ("x", data)})
    assert r.status_code == 200, r.text
    by_label = {x["label"]: x["score"] for x in r.json()["top_k"]}
    return np.array([by_label[f"class{i}"] for i in range(6)])


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_exif_rotated_copy_predicts_like_upright(spatial: TestClient, orientation: int, fmt: str) -> None:
    upright = quadrants()
    expected = scores(spatial, encode(upright, "PNG"))
    got = scores(spatial, with_orientation(upright, orientation, fmt))
    if fmt == "PNG":
        np.testing.assert_allclose(got, expected, atol=2e-6)
    else:  # lossy codecs move pixels a little; the answer must not move
        assert got.argmax() == expected.argmax()
        np.testing.assert_allclose(got, expected, atol=0.02)


def test_orientation_matters_to_this_model(spatial: TestClient) -> None:
    """Guard: without EXIF handling the stored (rotated) pixels would give a different answer."""
    upright = quadrants()
    rotated_no_exif = encode(upright.transpose(Image.Transpose.ROTATE_90), "PNG")
    assert np.abs(scores(spatial, rotated_no_exif) - scores(spatial, encode(upright, "PNG"))).max() > 0.01


def reference_tensor(img: Image.Image, resize_shorter: int, crop: int, mean: tuple, std: tuple) -> np.ndarray:
    """torchvision's Resize -> CenterCrop -> ToTensor -> Normalize, written out plainly from its docs."""
    img = img.convert("RGB")
    w, h = img.size
    if w <= h:
        new_w, new_h = resize_shorter, int(resize_shorter * h / w)
    else:
        new_w, new_h = int(resize_shorter * w / h), resize_shorter
    img = img.resize((new_w, new_h), Image.Resampling.BILINEAR)
    top, left = int(round((new_h - crop) / 2.0)), int(round((new_w - crop) / 2.0))
    arr = np.asarray(img, dtype=np.float32)[top : top + crop, left : left + crop] / 255.0
    arr = (arr - np.array(mean, np.float32)) / np.array(std, np.float32)
    return arr.transpose(2, 0, 1)[None].astype(np.float32)


@pytest.mark.parametrize("size", [(96, 64), (64, 96), (37, 37), (301, 199), (40, 500), (1000, 750)])
def test_served_probabilities_equal_onnxruntime(
    spatial: TestClient, spatial_model_path: Path, size: tuple[int, int]
) -> None:
    rng = np.random.default_rng(sum(size))
    img = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).filter(
        __import__("PIL.ImageFilter", fromlist=["BoxBlur"]).BoxBlur(2)
    )
    img.paste(quadrants((size[0] // 2 + 1, size[1] // 2 + 1)), (0, 0))
    data = encode(img, "PNG")
    x = reference_tensor(
        Image.open(__import__("io").BytesIO(data)), 37, 32, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    )
    session = ort.InferenceSession(str(spatial_model_path), providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {"input": x})
    e = np.exp(logits[0] - logits[0].max())
    np.testing.assert_allclose(scores(spatial, data), e / e.sum(), atol=1.5e-6)
