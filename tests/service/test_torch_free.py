"""Serving never needs torch: proven in the serve-only venv and by import tracing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def test_service_import_pulls_no_torch() -> None:
    code = "import sys, service.app, core.imaging; assert 'torch' not in sys.modules, 'torch imported'"
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)


@pytest.mark.skipif(
    os.environ.get("SERVE_ONLY") != "1", reason="only meaningful in the serve-only venv (make test-serve)"
)
def test_torch_is_absent_in_serve_env() -> None:
    with pytest.raises(ImportError):
        __import__("torch")
