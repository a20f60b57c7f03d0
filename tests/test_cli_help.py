"""Every command prints its help and exits 0 without doing any work or writing anything."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        ("train", "--min-per-class"),
        ("export", "--data-root"),
        ("service", "MODEL_PATH=artifacts/demo/model.onnx"),
        ("bench", "--quick"),
        ("bench.export_bench", "--keep"),
        ("bench.serve_bench", "--model"),
        ("bench.train_bench", "--loader"),
    ],
)
def test_help_prints_and_exits(module: str, expected: str, tmp_path: Path) -> None:
    if module != "service":
        pytest.importorskip("torch")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", module, "--help"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"usage: python -m {module}") and expected in proc.stdout
    if module in ("train", "export", "service"):
        assert "--debug" in proc.stdout  # every user error is one line; --debug shows the traceback
    assert list(tmp_path.iterdir()) == [], "--help must not write anything"
