"""The installable package: its dependencies match the pinned requirement files, and `pip install .[serve]`
gives a console script that serves a model from any folder."""

from __future__ import annotations

import importlib
import os
import re
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
import tomllib
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
PIN = re.compile(r"^([A-Za-z0-9._-]+(?:\[[^\]]*\])?)==([^\s;#]+)")  # name[extras]==version


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def file_pins(name: str) -> dict[str, str]:
    """The direct pins of a requirements file (the block above "# Their dependencies"), with its -r includes."""
    pins: dict[str, str] = {}
    for line in (ROOT / name).read_text().splitlines():
        if line.startswith("# Their dependencies"):
            break
        if line.startswith("-r "):
            pins |= file_pins(line.split(maxsplit=1)[1])
        elif m := PIN.match(line.strip()):
            pins[canonical(m[1])] = m[2]
    return pins


def project_pins(*extras: str) -> dict[str, str]:
    """Base dependencies plus ``extras``, following self-references such as ``image-classifier[serve]``."""
    pins: dict[str, str] = {}
    for spec in [*PROJECT["dependencies"], *(s for e in extras for s in PROJECT["optional-dependencies"][e])]:
        if spec.startswith(PROJECT["name"] + "["):
            pins |= project_pins(*spec[len(PROJECT["name"]) + 1 : -1].split(","))
        else:
            m = PIN.match(spec)
            assert m, f"{spec!r}: pyproject pins every dependency exactly, as the requirement files do"
            pins[canonical(m[1])] = m[2]
    return pins


@pytest.mark.parametrize(
    ("extra", "requirements"), [("serve", "requirements-serve.txt"), ("train", "requirements-train.txt")]
)
def test_extras_match_the_pinned_requirement_files(extra: str, requirements: str) -> None:
    assert project_pins(extra) == file_pins(requirements)


def test_dev_extra_matches_requirements_dev() -> None:
    dev = {canonical(PIN.match(s)[1]): PIN.match(s)[2] for s in PROJECT["optional-dependencies"]["dev"]}  # type: ignore[index]
    assert dev == file_pins("requirements-dev.txt")


def test_base_dependencies_are_what_core_imports() -> None:
    assert set(project_pins()) == {"numpy", "pillow", "onnxruntime"}


def test_console_scripts_point_at_functions() -> None:
    scripts = PROJECT["scripts"]
    assert set(scripts) == {f"image-classifier-{verb}" for verb in ("serve", "train", "export", "bench")}
    for target in scripts.values():
        module, func = target.split(":")
        if module.startswith(("train", "export", "bench")):
            pytest.importorskip("tqdm")  # the training modules need the train extra
        assert callable(getattr(importlib.import_module(module), func)), target


def test_package_data_ships_the_service_files() -> None:
    data = PYPROJECT["tool"]["setuptools"]["package-data"]["service"]
    assert sorted(data) == sorted(p.name for p in (ROOT / "service").iterdir() if p.suffix in (".html", ".js"))


def _dependencies_site() -> str:
    """The torch-free serve environment's packages when it exists (proves the serve set suffices), else ours."""
    serve_python = ROOT / ".venv-serve" / "bin" / "python"
    if serve_python.exists():
        code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
        return subprocess.run(
            [str(serve_python), "-c", code], capture_output=True, text=True, check=True
        ).stdout.strip()
    return sysconfig.get_paths()["purelib"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_pip_install_serve_gives_a_working_console_script_outside_the_repo(tmp_path: Path, rgb_model: Path) -> None:
    """Build the wheel, install it (no network: dependencies come from this environment), serve from /tmp."""
    pytest.importorskip("setuptools")
    src = tmp_path / "src"  # a copy, so the build leaves no build/ or egg-info in the checkout
    for name in ("core", "train", "export", "service", "bench"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", str(src), "-w", str(tmp_path / "w")],
        check=True,
        timeout=300,
    )
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    (wheel,) = (tmp_path / "w").glob("image_classifier-*.whl")
    subprocess.run(
        [*pip, "--python", str(py), "install", "--no-deps", "--no-index", str(wheel)], check=True, timeout=300
    )
    site = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(site, "_deps.pth").write_text(_dependencies_site() + "\n")  # installed already: no network needed

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DEBUG")}
    script = venv / "bin" / "image-classifier-serve"
    where = subprocess.run(
        [str(py), "-c", "import service; print(service.__file__)"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.startswith(site), where.stdout  # the installed copy, not this checkout
    helped = subprocess.run([str(script), "--help"], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0 and "MODEL_PATH=" in helped.stdout
    missing = subprocess.run([str(script)], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and missing.stderr.startswith("image-classifier-serve: error: MODEL_PATH: ")
    assert "artifacts/demo/model.onnx does not exist" in missing.stderr

    port = _free_port()
    env |= {"MODEL_PATH": str(rgb_model), "HOST": "127.0.0.1", "PORT": str(port), "INTRA_OP_THREADS": "1"}
    proc = subprocess.Popen([str(script)], cwd=elsewhere, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            pytest.fail("the installed service did not become ready")
        assert "<title>Image classifier</title>" in httpx.get(url + "/").text  # package data: page.html
        assert httpx.get(url + "/docs-assets/swagger-init.js").status_code == 200  # and swagger-init.js
        r = httpx.post(url + "/predict", content=_red_png(), headers={"content-type": "image/png"})
        assert r.status_code == 200 and r.json()["label"] == "red"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _red_png() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (220, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def rgb_model(tmp_path: Path) -> Path:
    from tests.service.modelgen import write_rgb_model

    return write_rgb_model(tmp_path / "model.onnx")
