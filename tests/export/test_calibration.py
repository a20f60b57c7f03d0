"""Temperature scaling at export: the fit, the ECE, the plot, the metadata, and opting out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.model import load_model, softmax
from export.calibrate import calibrate, ece, fit_temperature, nll, reliability_diagram
from export.config import ExportConfig
from export.pipeline import run_export

pytestmark = [pytest.mark.torch]


def overconfident(n: int = 3000, k: int = 10, scale: float = 3.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from softmax(z), logits reported as scale * z: the true temperature is ``scale``."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1.5, (n, k))
    p = softmax(z)
    y = np.array([rng.choice(k, p=row) for row in p])
    return (z * scale).astype(np.float32), y


@pytest.mark.parametrize("scale", [0.5, 3.0])
def test_fit_recovers_a_known_temperature_and_lowers_ece(scale: float) -> None:
    logits, y = overconfident(scale=scale)
    fit = calibrate(logits, y)
    assert fit.temperature == pytest.approx(scale, rel=0.1)
    assert fit.ece_after < fit.ece_before / 3 and fit.nll_after < fit.nll_before
    assert (softmax(logits / fit.temperature).argmax(1) == logits.argmax(1)).all()  # top-1 never changes
    assert nll(logits, y, fit.temperature) <= min(nll(logits, y, fit.temperature * f) for f in (0.9, 1.1))


def test_ece_at_its_edges() -> None:
    y = np.array([0, 1, 2, 0])
    right = np.eye(3)[y]
    assert ece(right, y) == 0.0  # certain and right
    assert ece(np.eye(3)[(y + 1) % 3], y) == 1.0  # certain and wrong
    assert ece(np.full((4, 3), 1 / 3), np.array([0, 1, 2, 0])) == pytest.approx(abs(2 / 4 - 1 / 3))
    with pytest.raises(ValueError):
        calibrate(np.zeros((0, 3), np.float32), np.zeros(0, np.int64))
    assert 0.05 <= fit_temperature(np.zeros((5, 3), np.float32), np.zeros(5, np.int64)) <= 20  # flat: any T, in range
    separable = np.eye(3, dtype=np.float32)[y] * 5  # every answer right by a margin: NLL falls as T -> 0
    assert calibrate(separable, y).at_bound and not calibrate(*overconfident()).at_bound


def test_reliability_diagram_is_a_png(tmp_path: Path) -> None:
    logits, y = overconfident(n=500)
    reliability_diagram(logits, y, calibrate(logits, y), tmp_path / "r.png", "test")
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_export_fits_on_val_and_records_it_everywhere(artifact: dict[str, Any]) -> None:
    out, report = artifact["out"], artifact["report"]
    c = report["calibration"]
    assert c["fitted_on"].startswith("validation split") and c["n"] > 0 and c["temperature"] > 0
    assert c["ece_after"] < c["ece_before"], c  # ECE falls on the trained model's val split
    assert c["test"]["n"] > 0 and {"ece_before", "ece_after"} <= set(c["test"])
    assert (out / c["plot"]).read_bytes()[:4] == b"\x89PNG"
    assert json.loads((out / "export_report.json").read_text())["calibration"] == json.loads(json.dumps(c))
    for name in ("model.onnx", "model.int8.onnx", "model.fp16.onnx"):  # every variant serves calibrated
        model = load_model(out / name, threads=1)
        assert model.contract.calibration is not None
        assert model.contract.temperature == pytest.approx(c["temperature"])
        x = np.random.default_rng(0).standard_normal((2, *model.input_shape)).astype(np.float32)
        np.testing.assert_allclose(model.probabilities(x), softmax(model.logits(x) / c["temperature"]), atol=1e-6)


def test_no_calibrate_keeps_the_raw_softmax(checkpoint: Path, artifact: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "raw"
    out.mkdir()
    (out / "reliability.png").write_bytes(b"stale")  # from an earlier export into the same folder
    report = run_export(ExportConfig(checkpoint=checkpoint, out=out, calibrate=False))
    assert "no-calibrate" in report["calibration"]["skipped"]
    assert not (out / "reliability.png").exists()
    model = load_model(out / "model.onnx", threads=1)
    assert model.contract.calibration is None and model.contract.temperature == 1.0
