"""The serve image's install, reproduced: deploy/serve-install.sh (the script Dockerfile.serve runs)
builds a fresh venv from requirements-serve.txt; torch must be absent and the service tests must pass
there. Only the test runner (requirements-dev.txt) is added afterwards, from outside the venv."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.dockerfile import ROOT

# Install, test-runner install and the service suite each have their own 600 s limit below; the global
# 300 s pytest timeout would cut the three short on a busy 2-core machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


def pins(requirements: Path) -> dict[str, str]:
    found = re.findall(r"^([A-Za-z0-9_.-]+)==([^\s#]+)", requirements.read_text(), flags=re.M)
    return {name.lower().replace("_", "-"): version for name, version in found}


def probe(python: Path, code: str) -> str:
    return subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def test_serve_install_has_no_torch_and_passes_the_service_tests(tmp_path: Path) -> None:
    venv = tmp_path / "serve"
    subprocess.run(
        ["bash", "deploy/serve-install.sh", str(venv), "requirements-serve.txt"],
        cwd=ROOT,
        check=True,
        env={**os.environ, "PYTHON": sys.executable},
        timeout=600,
    )
    python = venv / "bin" / "python"

    installed = probe(
        python,
        "import importlib.metadata as m; print('\\n'.join("
        "f\"{d.metadata['Name']}=={d.version}\" for d in m.distributions()))",
    )
    versions = {n.lower().replace("_", "-"): v for n, v in (line.split("==") for line in installed.splitlines())}
    assert {n: versions.get(n) for n in pins(ROOT / "requirements-serve.txt")} == pins(ROOT / "requirements-serve.txt")
    for absent in ("torch", "torchvision", "pip", "setuptools"):
        assert absent not in versions, f"{absent} is in the serve environment"

    # The test runner only, installed by this interpreter's pip into the stripped venv.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
            "requirements-dev.txt",
        ],
        cwd=ROOT,
        check=True,
        timeout=600,
    )
    assert probe(python, "import importlib.util as u; print(u.find_spec('torch'))") == "None"
    result = subprocess.run(
        [str(python), "-m", "pytest", "tests/service", "-q", "-x", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env={**os.environ, "SERVE_ONLY": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout.splitlines()[-1]
