"""Fixtures of the image tests: one private Docker engine per session, the base image the
Dockerfiles name, and serve images built the way the README says (``make image-serve MODEL=...``).

What they measure (sizes, layers, build times) is printed in the terminal summary.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.deploy.dockerfile import ROOT, stages
from tests.deploy.engine import MB, Engine, missing_requirement, on_ci, provide_base, unavailable
from tests.service.modelgen import write_spatial_model

REPORT: list[str] = []
LEFT_OUT: list[str] = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Where the engine cannot run (and CI is not set), leave the image tests out with one line."""
    image_tests = [item for item in items if item.get_closest_marker("docker")]
    reason = missing_requirement() if image_tests and not on_ci() else None
    if reason:
        items[:] = [item for item in items if item not in image_tests]
        config.hook.pytest_deselected(items=image_tests)
        LEFT_OUT.append(f"{len(image_tests)} image tests not run: {reason}")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in LEFT_OUT:
        terminalreporter.write_line(f"SKIPPED {line}", yellow=True)
    if REPORT:
        terminalreporter.section("images, measured by tests/deploy on a private Docker engine")
        for line in REPORT:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    if reason := missing_requirement():
        unavailable(reason)  # on CI: a failure
    docker = Engine()
    try:
        docker.start()
        version = docker.docker("version", "--format", "{{.Server.Version}}").stdout.strip()
        REPORT.append(f"engine: dockerd {version} (classic builder), {os.cpu_count()} CPUs")
        yield docker
    finally:
        docker.stop()


@pytest.fixture(scope="session")
def python_base(engine: Engine) -> str:
    """The FROM image of both Dockerfiles, pulled or stood in for."""
    name = stages(ROOT / "Dockerfile.serve")[0].image
    how = provide_base(engine, name)
    REPORT.append(f"base {name}: {how}; {engine.image_size(name) / MB:.1f} MB")
    return name


@dataclass(frozen=True)
class ServeImage:
    tag: str
    model: Path  # the file baked into /models/model.onnx, kept on this machine for reference answers
    version: str  # the model's version, as /predict reports it
    build_s: float
    context: str  # "Sending build context" as the engine reported it


def make_serve_image(engine: Engine, artifacts: Path, version: str, seed: int) -> ServeImage:
    """``make image-serve MODEL=artifacts/NAME/model.onnx`` with a tiny generated model, as a user would."""
    folder = artifacts / f"image-test-{os.getpid()}-v{version}"
    folder.mkdir()
    model = write_spatial_model(folder / "model.onnx", seed=seed, version=version)
    tag = f"image-classifier:test-v{version}"
    start = time.monotonic()
    result = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "image-serve",
            f"MODEL={model.relative_to(ROOT)}",
            f"IMAGE={tag}",
            "DOCKER_BUILD_FLAGS=--network=host",
        ],
        cwd=ROOT,
        env=engine.env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    sent = re.search(r"Sending build context to Docker daemon\s+(\S+)", result.stdout + result.stderr)
    return ServeImage(tag, model, version, time.monotonic() - start, sent.group(1) if sent else "?")


@pytest.fixture(scope="session")
def artifacts() -> Iterator[Path]:
    """This repository's artifacts/, where the test models live while the image builds read them
    (artifacts/image-test-PID-vN/model.onnx); removed afterwards."""
    folder = ROOT / "artifacts"
    try:
        yield folder
    finally:
        for made in folder.glob(f"image-test-{os.getpid()}-v*"):
            shutil.rmtree(made, ignore_errors=True)


@pytest.fixture(scope="session")
def serve_image(engine: Engine, python_base: str, artifacts: Path) -> ServeImage:
    image = make_serve_image(engine, artifacts, "1", seed=0)
    REPORT.append(
        f"serve image {image.tag}: built in {image.build_s:.0f} s on a fresh engine (no layer cache), "
        f"build context {image.context}"
    )
    return image


@pytest.fixture(scope="session")
def serve_image_v2(engine: Engine, serve_image: ServeImage, artifacts: Path) -> ServeImage:
    """The same image with another model: only the model layer is rebuilt."""
    image = make_serve_image(engine, artifacts, "2", seed=1)
    REPORT.append(f"serve image {image.tag} (a new model only): built in {image.build_s:.1f} s")
    return image


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Container:
    engine: Engine
    name: str
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def inspect(self, template: str) -> str:
        return self.engine.docker("inspect", "-f", template, self.name).stdout.strip()

    def logs(self) -> str:
        result = self.engine.docker("logs", self.name, check=False)
        return result.stdout + result.stderr

    def wait_ready(self, timeout: float = 60) -> float:
        """Seconds until /readyz answers 200; fails with the container's log if it never does."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return time.monotonic() - start
            except httpx.TransportError:
                pass
            if self.inspect("{{.State.Running}}") != "true":
                break
            time.sleep(0.1)
        raise AssertionError(f"{self.name} not ready after {time.monotonic() - start:.0f} s:\n{self.logs()[-3000:]}")


@contextmanager
def serve_container(engine: Engine, image: str, *flags: str) -> Iterator[Container]:
    """The serve image on a free port of the host network (``docker run -d``), removed afterwards."""
    port = free_port()
    name = f"serve-{port}"
    engine.docker("run", "-d", "--name", name, "--network", "host", "-e", f"PORT={port}", *flags, image)
    try:
        yield Container(engine, name, port)
    finally:
        engine.docker("rm", "-f", name, check=False)


def photo(width: int = 333, height: int = 250, seed: int = 5) -> bytes:
    """A JPEG with structure (gradients and noise) at an odd size, so resize and crop matter."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x * 255 / width, y * 255 / height, (x + y) * 127 / (width + height)], axis=-1)
    pixels = np.clip(pixels + rng.normal(0, 20, pixels.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=90)
    return buf.getvalue()
