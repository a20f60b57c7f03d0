"""Service fixtures: real ONNX files on disk, the real app behind a real HTTP client."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service.app import create_app
from service.settings import Settings
from tests.service.modelgen import write_gray_model, write_rgb_model


@pytest.fixture(scope="session")
def rgb_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_rgb_model(tmp_path_factory.mktemp("rgb") / "model.onnx")


@pytest.fixture(scope="session")
def gray_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_gray_model(tmp_path_factory.mktemp("gray") / "model.onnx")


def make_client(model_path: Path, **overrides: object) -> TestClient:
    settings = Settings(model_path=model_path, intra_op_threads=1, **overrides)
    return TestClient(create_app(settings))


@pytest.fixture(scope="module")
def client(rgb_model_path: Path) -> Iterator[TestClient]:
    with make_client(rgb_model_path) as c:
        yield c


@pytest.fixture(scope="module")
def gray_client(gray_model_path: Path) -> Iterator[TestClient]:
    with make_client(gray_model_path) as c:
        yield c


def encode(img: Image.Image, fmt: str = "JPEG", **params: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **params)
    return buf.getvalue()


@pytest.fixture
def red_jpeg() -> bytes:
    return encode(Image.new("RGB", (64, 48), (220, 30, 30)))
