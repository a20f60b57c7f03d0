"""Logs: one JSON object per line (or plain text), one access line per request with its id,
the level from LOG_LEVEL, and never an image's bytes or an API key."""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service.app import create_app
from service.logging_setup import QUIET_LIBRARIES, configure_logging, resolve_format
from tests.service.conftest import encode, make_client, make_settings

ROOT = Path(__file__).resolve().parents[2]
BLUE_PNG = encode(Image.new("RGB", (40, 90), (20, 30, 230)), "PNG")


@pytest.fixture
def logs() -> Iterator[Any]:
    """configure_logging into a buffer for one test, then the process's logging as it was."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    names = ("uvicorn", "uvicorn.error", "uvicorn.access", *QUIET_LIBRARIES)
    loggers = {
        n: (list(logging.getLogger(n).handlers), logging.getLogger(n).propagate, logging.getLogger(n).level)
        for n in names
    }
    buffer = io.StringIO()

    def setup(level: str = "info", fmt: str = "json") -> io.StringIO:
        configure_logging(level, fmt, stream=buffer)
        return buffer

    try:
        yield setup
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        for name, (handlers, propagate, level) in loggers.items():
            logging.getLogger(name).handlers[:] = handlers
            logging.getLogger(name).propagate = propagate
            logging.getLogger(name).setLevel(level)
        logging.captureWarnings(False)


def records(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def access(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [r for r in records(buffer) if r["logger"] == "service.access"]


def test_a_request_id_is_found_in_the_json_access_line(logs: Any, client: TestClient) -> None:
    out = logs()
    r = client.post("/predict?top_k=1", content=BLUE_PNG, headers={"X-Request-ID": "find-me-1"})
    assert r.headers["x-request-id"] == "find-me-1"
    (line,) = [a for a in access(out) if a.get("request_id") == "find-me-1"]
    assert line["level"] == "info" and line["time"].endswith("+00:00")
    assert {k: line[k] for k in ("method", "route", "path", "status", "outcome")} == {
        "method": "POST",
        "route": "/predict",
        "path": "/predict",
        "status": 200,
        "outcome": "ok",
    }
    assert (line["image_format"], line["image_width"], line["image_height"]) == ("PNG", 40, 90)
    assert (line["model_name"], line["model_version"]) == ("tiny-rgb", "7")
    assert line["bytes_in"] == len(BLUE_PNG) and line["bytes_out"] == len(r.content)
    assert 0 < line["latency_ms"] < 30_000


def test_refusals_log_their_code_and_batches_their_items(logs: Any, client: TestClient) -> None:
    out = logs()
    client.post("/predict", content=b"%PDF-1.4", headers={"X-Request-ID": "refused"})
    files = [
        ("files", ("a.png", BLUE_PNG)),
        ("files", ("b.jpg", encode(Image.new("RGB", (8, 8))))),
        ("files", ("c", b"?")),
    ]
    client.post("/predict/batch", files=files, headers={"X-Request-ID": "batch"})
    by_id = {a["request_id"]: a for a in access(out)}
    assert (by_id["refused"]["status"], by_id["refused"]["outcome"]) == (415, "unsupported_media_type")
    assert "image_format" not in by_id["refused"]
    batch = by_id["batch"]
    assert (batch["images"], batch["image_formats"], batch["items"], batch["item_errors"]) == (2, "JPEG,PNG", 3, 1)


def test_probes_and_scrapes_are_debug_lines(logs: Any, client: TestClient) -> None:
    out = logs("info")
    client.get("/healthz")
    client.get("/metrics")
    client.get("/nowhere")
    assert [a["path"] for a in access(out)] == ["/nowhere"]
    out = logs("debug")
    client.get("/healthz", headers={"X-Request-ID": "probe"})
    assert [a["level"] for a in access(out) if a.get("request_id") == "probe"] == ["debug"]


def test_log_level_setting_silences_info(logs: Any, client: TestClient) -> None:
    out = logs("warning")
    client.post("/predict", content=BLUE_PNG)
    assert out.getvalue() == ""


def test_plain_text_for_a_terminal(logs: Any, client: TestClient) -> None:
    out = logs("info", "plain")
    client.post("/predict", content=BLUE_PNG, headers={"X-Request-ID": "plain-1"})
    (line,) = [ln for ln in out.getvalue().splitlines() if "[plain-1]" in ln]
    assert " INFO  service.access POST /predict 200 " in line
    assert "route=/predict" in line and "image_format=PNG" in line and "outcome=ok" in line


def test_auto_picks_plain_on_a_terminal_and_json_elsewhere() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert (resolve_format("auto", Tty()), resolve_format("auto", io.StringIO())) == ("plain", "json")
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        resolve_format("xml", io.StringIO())


def test_a_failure_is_logged_with_its_traceback_and_id(logs: Any, rgb_model_path: Path) -> None:
    out = logs()
    app = create_app(make_settings(rgb_model_path))
    app.add_api_route("/boom", lambda: 1 / 0)
    with TestClient(app, raise_server_exceptions=False) as client:
        client.get("/boom", headers={"X-Request-ID": "bug-2"})
    lines = [r for r in records(out) if r.get("request_id") == "bug-2"]
    error = next(r for r in lines if r["level"] == "error")
    assert "ZeroDivisionError" in error["exception"]
    assert [(a["status"], a["outcome"]) for a in lines if a["logger"] == "service.access"] == [(500, "internal_error")]


def windows(data: bytes) -> set[str]:
    """24-character pieces of every way a log could spell these bytes."""
    forms = [data.hex(), base64.b64encode(data).decode(), repr(data)[2:-1], data.decode("latin-1")]
    return {f[i : i + 24] for f in forms for i in range(0, max(1, len(f) - 24), 8) if len(f) >= 24}


def test_no_image_bytes_or_api_keys_are_ever_logged(logs: Any, rgb_model_path: Path) -> None:
    key = "k3y-0f-the-s3rvice-never-logged"
    rng = np.random.default_rng(7)
    noisy_png = encode(Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)), "PNG")
    bodies = [
        noisy_png,
        noisy_png[: len(noisy_png) // 2],  # truncated
        b"II*\x00" + rng.bytes(300),  # a TIFF header over noise: Pillow quotes headers in its errors
        b"\xff\xd8\xff\xe0" + rng.bytes(300),  # a JPEG start over noise
        rng.bytes(400),
    ]
    out = logs("debug")
    with make_client(rgb_model_path, api_key=key) as client:
        for body in bodies:
            client.post("/predict", content=body, headers={"X-API-Key": key})
            client.post("/predict", files={"file": ("x.png", body)}, headers={"Authorization": f"Bearer {key}"})
            client.post("/predict", json={"image": base64.b64encode(body).decode()}, headers={"X-API-Key": key})
            client.post("/predict/batch", files=[("files", ("a", body))], headers={"X-API-Key": key})
        client.post("/predict", content=noisy_png, headers={"X-API-Key": key[:-1]})  # the wrong key
    raw = out.getvalue()
    text = raw + "\n".join(str(v) for r in records(out) for v in r.values())  # as written and as decoded
    assert len(access(out)) == 4 * len(bodies) + 1  # + the wrong key
    assert key[:-1] not in text
    leaked = {w for body in bodies for w in windows(body) if w in text}
    assert leaked == set()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_python_m_service_writes_json_lines_with_the_request_id(rgb_model_path: Path) -> None:
    """The real entry point: every line on stderr is JSON, and the request is found by its id."""
    port = free_port()
    env = {
        **os.environ,
        "MODEL_PATH": str(rgb_model_path),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "LOG_FORMAT": "json",
        "INTRA_OP_THREADS": "1",
    }
    proc = subprocess.Popen([sys.executable, "-m", "service"], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        r = httpx.post(f"http://127.0.0.1:{port}/predict", content=BLUE_PNG, headers={"X-Request-ID": "e2e-77"})
        assert r.status_code == 200 and r.headers["x-request-id"] == "e2e-77"
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    lines = [json.loads(line) for line in err.splitlines()]  # every line parses
    (hit,) = [x for x in lines if x.get("request_id") == "e2e-77"]
    assert (hit["logger"], hit["route"], hit["status"], hit["image_format"]) == (
        "service.access",
        "/predict",
        200,
        "PNG",
    )
    assert any(x["logger"].startswith("uvicorn") for x in lines)  # uvicorn's own lines are JSON too
    assert not any(x["logger"] == "uvicorn.access" for x in lines)  # replaced by service.access
