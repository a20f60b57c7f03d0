"""The training image, built by ``make image-train`` and run on a real engine (``make test-images``).

Inside the container, as a non-root user that owns the mounted folders (a user's
``--user "$(id -u):$(id -g)"``), with no network: ``--help``, a tiny CPU training on
generated data, and the export of its checkpoint; the exported model then answers through
the service outside the container. Size, layers and build time go to the terminal summary.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.deploy.conftest import REPORT
from tests.deploy.dockerfile import ROOT
from tests.deploy.engine import MB, Engine, layer_table

pytestmark = [pytest.mark.docker, pytest.mark.train_image, pytest.mark.timeout(1800)]

TAG = "image-classifier-train:test"
CALLER = "4242:4242"  # the calling user: neither root nor the image's own uid 10001


@pytest.fixture(scope="module")
def train_image(engine: Engine, python_base: str) -> str:
    start = time.monotonic()
    result = subprocess.run(
        ["make", "--no-print-directory", "image-train", f"TRAIN_IMAGE={TAG}", "DOCKER_BUILD_FLAGS=--network=host"],
        cwd=ROOT,
        env=engine.env,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    size = engine.image_size(TAG)
    (venv,) = [s for s, step in engine.layers(TAG) if "pip install" in step]
    REPORT.extend(
        [
            f"training image {TAG}: built in {time.monotonic() - start:.0f} s on a fresh engine (pip downloads "
            f"every wheel); {size / MB:.0f} MB, venv layer {venv / MB:.0f} MB; layers with a size, newest first:",
            *layer_table(engine, TAG),
        ]
    )
    return TAG


def caller_owned(path: Path) -> Path:
    path.mkdir()
    uid, gid = (int(x) for x in CALLER.split(":"))
    os.chown(path, uid, gid)
    return path


def run(
    engine: Engine,
    image: str,
    *args: str,
    volumes: dict[Path, str] | None = None,
    entrypoint: str | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    flags = ["--rm", "--network", "none", "--user", CALLER, "--shm-size", "256m"]
    for host, inside in (volumes or {}).items():
        flags += ["-v", f"{host}:{inside}"]
    if entrypoint:
        flags += ["--entrypoint", entrypoint]
    return engine.docker("run", *flags, image, *args, check=False, timeout=timeout)


def test_help(engine: Engine, train_image: str) -> None:
    result = run(engine, train_image)  # CMD ["--help"]
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: python -m train")


def test_tiny_training_and_export_as_the_calling_user(engine: Engine, train_image: str, tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    runs, artifacts = caller_owned(tmp_path / "runs"), caller_owned(tmp_path / "artifacts")
    volumes = {runs: "/runs", artifacts: "/artifacts"}
    start = time.monotonic()
    trained = run(
        engine,
        train_image,
        "--data",
        "synthetic",
        "--arch",
        "tinycnn",
        "--synthetic-per-class",
        "12",  # training refuses fewer than 10 per class: val and test need some of each
        "--epochs",
        "1",
        "--workers",
        "0",
        "--out",
        "/runs/tiny",
        "--no-progress",
        volumes=volumes,
    )
    train_s = time.monotonic() - start
    assert trained.returncode == 0, trained.stdout[-3000:] + trained.stderr[-3000:]
    start = time.monotonic()
    exported = run(
        engine,
        train_image,
        "-m",
        "export",
        "--checkpoint",
        "/runs/tiny/best.pt",
        "--out",
        "/artifacts/tiny",
        volumes=volumes,
        entrypoint="python",
    )
    export_s = time.monotonic() - start
    assert exported.returncode == 0, exported.stdout[-3000:] + exported.stderr[-3000:]

    written = [*runs.rglob("*"), *artifacts.rglob("*")]
    assert {"best.pt", "report.json", "model.onnx"} <= {p.name for p in written}
    assert {(p.stat().st_uid, p.stat().st_gid) for p in written} == {(4242, 4242)}

    # The exported model serves, outside the container, an image the training generated.
    image = next((runs / "tiny").rglob("*.jpeg"))
    with TestClient(create_app(Settings(model_path=artifacts / "tiny" / "model.onnx", intra_op_threads=1))) as c:
        response = c.post("/predict", files={"file": (image.name, image.read_bytes(), "image/jpeg")})
    assert response.status_code == 200, response.text
    REPORT.append(
        f"in the training image, as uid {CALLER}, no network: tiny training {train_s:.0f} s, "
        f"export {export_s:.0f} s (container start and torch import included)"
    )
