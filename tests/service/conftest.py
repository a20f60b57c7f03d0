"""Service fixtures: real ONNX files on disk, the real app behind a real HTTP client."""

from __future__ import annotations

import io
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image

from service.app import create_app
from service.server import build_server
from service.settings import Settings
from tests.service.modelgen import write_gray_model, write_rgb_model, write_spatial_model


@pytest.fixture(scope="session")
def rgb_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_rgb_model(tmp_path_factory.mktemp("rgb") / "model.onnx")


@pytest.fixture(scope="session")
def gray_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_gray_model(tmp_path_factory.mktemp("gray") / "model.onnx")


@pytest.fixture(scope="session")
def spatial_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_spatial_model(tmp_path_factory.mktemp("spatial") / "model.onnx")


def make_settings(model_path: Path, **overrides: object) -> Settings:
    return Settings(model_path=model_path, intra_op_threads=1, decode_threads=2, **overrides)


def make_client(model_path: Path, **overrides: object) -> TestClient:
    return TestClient(create_app(make_settings(model_path, **overrides)))


@pytest.fixture(scope="module")
def client(rgb_model_path: Path) -> Iterator[TestClient]:
    with make_client(rgb_model_path) as c:
        yield c


@pytest.fixture(scope="module")
def gray_client(gray_model_path: Path) -> Iterator[TestClient]:
    with make_client(gray_model_path) as c:
        yield c


@contextmanager
def serve(settings: Settings | FastAPI) -> Iterator[str]:
    """The real app (or this one) under uvicorn on a loopback port, in a thread; yields the base URL once ready."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = settings if isinstance(settings, FastAPI) else create_app(settings)
    server = build_server(app, log_level="warning")  # what python -m service runs
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        else:
            raise RuntimeError("the service did not become ready in 30 s")
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def encode(img: Image.Image, fmt: str = "JPEG", **params: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **params)
    return buf.getvalue()


@pytest.fixture
def red_jpeg() -> bytes:
    return encode(Image.new("RGB", (64, 48), (220, 30, 30)))
