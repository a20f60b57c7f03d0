"""Training learns on the synthetic set and writes a self-describing checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from train.checkpoint import load_checkpoint  # noqa: E402
from train.config import parse_config  # noqa: E402
from train.run import train  # noqa: E402

pytestmark = [pytest.mark.torch]


def test_synthetic_training_beats_chance(tmp_path: Path) -> None:
    report = train(parse_config(["--data", "synthetic", "--out", str(tmp_path), "--no-progress", "--workers", "0"]))
    assert report["test_accuracy"] > 0.5  # chance is 0.1
    ckpt = load_checkpoint(tmp_path / "best.pt")
    assert ckpt["labels"][:3] == ["dog", "horse", "elephant"]
    assert ckpt["input"] == {"color": "RGB", "height": 64, "width": 64}
    assert ckpt["test_accuracy"] == report["test_accuracy"]
    assert json.loads((tmp_path / "report.json").read_text())["split_sha256"] == ckpt["split_sha256"]
