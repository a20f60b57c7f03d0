"""The serve image, built by ``make image-serve MODEL=...`` and run on a real engine.

Checked on running containers: health and readiness, an answer equal to the service's own
outside the container, a non-root user, the HEALTHCHECK turning healthy, a read-only root
filesystem, onnxruntime's threads following ``--cpus``, and ``docker stop`` letting an
in-flight request finish before exiting 0. Sizes and layers go to the terminal summary.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.deploy.conftest import REPORT, Container, ServeImage, photo, serve_container
from tests.deploy.engine import MB, Engine, layer_table
from tests.service.modelgen import write_spatial_model

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

OFFICIAL_SLIM_MB = 125  # python:3.11-slim-bookworm unpacked, linux/amd64: Docker Hub's figure, not measured here
SIZE_BAR_MB = 300
# What the Kubernetes manifest sets too: read-only root, /tmp for spooled uploads, no capabilities.
HARDENED = (
    "--read-only",
    "--tmpfs",
    "/tmp:rw,size=64m",
    "--cap-drop",
    "ALL",
    "--security-opt",
    "no-new-privileges",
    "--cpus",
    "1",
)


def without_timing(answer: dict) -> dict:
    return {k: v for k, v in answer.items() if k != "timing_ms"}


@pytest.fixture(scope="module")
def reference(serve_image: ServeImage) -> dict:
    """The service's answer outside any container: the in-process app on the same model file."""
    with TestClient(create_app(Settings(model_path=serve_image.model, intra_op_threads=1))) as client:
        response = client.post("/predict", files={"file": ("photo.jpg", photo(), "image/jpeg")})
    assert response.status_code == 200, response.text
    return without_timing(response.json())


@pytest.fixture(scope="module")
def plain(engine: Engine, serve_image: ServeImage) -> Container:
    """``docker run`` as the README shows, plus a 1 s HEALTHCHECK interval so the test is quick."""
    with serve_container(engine, serve_image.tag, "--health-interval", "1s", "--health-start-period", "30s") as c:
        REPORT.append(f"serve container ready (/readyz 200) {c.wait_ready():.2f} s after docker run")
        yield c


@pytest.fixture(scope="module")
def hardened(engine: Engine, serve_image: ServeImage) -> Container:
    with serve_container(engine, serve_image.tag, *HARDENED) as c:
        c.wait_ready()
        yield c


def test_image_size_and_layers(engine: Engine, python_base: str, serve_image: ServeImage) -> None:
    size, base = engine.image_size(serve_image.tag), engine.image_size(python_base)
    (venv,) = [s for s, step in engine.layers(serve_image.tag) if "COPY" in step and "/opt/venv" in step]
    added = size - base
    REPORT.extend(
        [
            f"serve image {serve_image.tag}: {size / MB:.1f} MB = base {base / MB:.1f} MB + {added / MB:.1f} MB "
            f"(venv layer {venv / MB:.1f} MB); layers with a size, newest first:",
            *layer_table(engine, serve_image.tag),
            f"  estimate on the official slim base (about {OFFICIAL_SLIM_MB} MB unpacked, quoted, not measured here): "
            f"{OFFICIAL_SLIM_MB + added / MB:.0f} MB against a {SIZE_BAR_MB} MB bar",
        ]
    )
    assert added / MB <= SIZE_BAR_MB - OFFICIAL_SLIM_MB


def test_health_readiness_and_the_same_answer_as_outside(plain: Container, reference: dict) -> None:
    assert httpx.get(f"{plain.url}/healthz", timeout=5).status_code == 200
    assert httpx.get(f"{plain.url}/readyz", timeout=5).status_code == 200
    response = httpx.post(f"{plain.url}/predict", files={"file": ("photo.jpg", photo(), "image/jpeg")}, timeout=30)
    assert response.status_code == 200, response.text
    assert without_timing(response.json()) == reference


def test_runs_as_the_image_user_not_root(plain: Container) -> None:
    assert plain.engine.docker("exec", plain.name, "id", "-u").stdout.strip() == "10001"
    assert plain.inspect("{{.Config.User}}") == "10001:10001"


def test_healthcheck_turns_healthy(plain: Container) -> None:
    start = time.monotonic()
    while (status := plain.inspect("{{.State.Health.Status}}")) != "healthy":
        assert status == "starting" and time.monotonic() - start < 60, plain.inspect("{{json .State.Health}}")
        time.sleep(0.3)


def test_onnxruntime_threads_follow_the_cpu_limit(plain: Container, hardened: Container) -> None:
    """``--cpus 1`` is a CFS quota (cgroup v1 here): one intra-op thread. No limit: every CPU."""

    def threads(c: Container) -> int:
        return httpx.get(f"{c.url}/v1/model", timeout=5).json()["serving"]["intra_op_threads"]

    assert threads(hardened) == 1
    assert threads(plain) == len(os.sched_getaffinity(0))


def test_read_only_root_filesystem_with_a_tmpfs_for_uploads(hardened: Container, reference: dict) -> None:
    assert hardened.engine.docker("exec", hardened.name, "touch", "/app/x", check=False).returncode != 0
    # Multipart files over 1 MB spool to /tmp: the tmpfs is what keeps them working.
    big = photo(2400, 1800, seed=6)
    assert len(big) > 1_200_000
    response = httpx.post(f"{hardened.url}/predict", files={"file": ("big.jpg", big, "image/jpeg")}, timeout=60)
    assert response.status_code == 200, response.text
    response = httpx.post(f"{hardened.url}/predict", files={"file": ("photo.jpg", photo(), "image/jpeg")}, timeout=30)
    assert without_timing(response.json()) == reference


def test_docker_stop_answers_the_request_in_flight_and_exits_0(
    engine: Engine, serve_image: ServeImage, reference: dict
) -> None:
    body = photo()
    with serve_container(engine, serve_image.tag) as c:
        c.wait_ready()
        request = socket.create_connection(("127.0.0.1", c.port), timeout=30)
        # Half the body: the request is in flight when SIGTERM arrives.
        request.sendall(
            b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body[: len(body) // 2]
        )
        time.sleep(0.5)
        start = time.monotonic()
        stop = subprocess.Popen(
            ["docker", "stop", "--time", "30", c.name],
            env=engine.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 10
        while "Waiting for connections to close" not in c.logs():
            assert time.monotonic() < deadline and stop.poll() is None, c.logs()[-2000:]
            time.sleep(0.1)
        with pytest.raises(OSError):  # no longer accepting
            socket.create_connection(("127.0.0.1", c.port), timeout=2).close()
        request.sendall(body[len(body) // 2 :])
        raw = b""
        while chunk := request.recv(65536):
            raw += chunk
        request.close()
        assert stop.wait(timeout=40) == 0, stop.stderr.read() if stop.stderr else ""
        stopped_in = time.monotonic() - start
        head, _, payload = raw.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), raw[:500]
        assert without_timing(json.loads(payload)) == reference
        assert c.inspect("{{.State.ExitCode}}") == "0"
        assert stopped_in < 30  # the grace period: never killed
        REPORT.append(f"docker stop with a request in flight: answered, exit 0, {stopped_in:.1f} s (grace period 30 s)")


def test_model_on_a_volume_instead_of_the_baked_one(engine: Engine, serve_image: ServeImage, tmp_path: Path) -> None:
    """The README's other way: a model folder mounted read-only at /models (readable by uid 10001)."""
    folder = tmp_path / "models"
    folder.mkdir()
    write_spatial_model(folder / "model.onnx", seed=3, version="mounted")
    for path in (tmp_path, folder):
        path.chmod(0o755)
    with serve_container(engine, serve_image.tag, "-v", f"{folder}:/models:ro") as c:
        c.wait_ready()
        response = httpx.post(f"{c.url}/predict", files={"file": ("photo.jpg", photo(), "image/jpeg")}, timeout=30)
        assert response.status_code == 200, response.text
        assert response.json()["model"]["version"] == "mounted"
