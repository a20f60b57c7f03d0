"""The serve-only environment is what the image installs: every serve pin, and no torch, pip or setuptools.

`make serve-venv` builds `.venv-serve` with `deploy/serve-install.sh`, the script `Dockerfile.serve`
runs, and `make test-serve` runs the whole service suite in it: that run is what proves the stripped
install serves. These checks only run there.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(
    os.environ.get("SERVE_ONLY") != "1", reason="only meaningful in the serve-only venv (make test-serve)"
)


def pins(requirements: Path) -> dict[str, str]:
    found = re.findall(r"^([A-Za-z0-9_.-]+)==([^\s#]+)", requirements.read_text(), flags=re.M)
    return {name.lower().replace("_", "-"): version for name, version in found}


def installed() -> dict[str, str]:
    return {d.metadata["Name"].lower().replace("_", "-"): d.version for d in importlib.metadata.distributions()}


def test_every_serve_pin_is_installed_at_its_version() -> None:
    wanted = pins(ROOT / "requirements-serve.txt")
    have = installed()
    assert {name: have.get(name) for name in wanted} == wanted


def test_no_torch_and_no_installer_in_the_serve_environment() -> None:
    have = installed()
    assert [name for name in ("torch", "torchvision", "pip", "setuptools") if name in have] == []
