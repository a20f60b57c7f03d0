"""The checks can refuse: a broken export or a lossy INT8 exits non-zero and leaves no model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.imaging import preprocess
from export.config import ExportConfig
from export.pipeline import AccuracyGateError, run_export
from export.preprocess_parity import compare_preprocessing, failures
from export.samples import generated_samples
from tests.export.broken_export import negate_logits
from train.checkpoint import load_checkpoint, rebuild_model

pytestmark = [pytest.mark.torch]
ROOT = Path(__file__).resolve().parents[2]
HELPER = Path(__file__).with_name("broken_export.py")


def broken_cli(kind: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(HELPER), kind, "--", *args], cwd=ROOT, capture_output=True, text=True, timeout=240
    )


def assert_no_model(out: Path) -> None:
    left = sorted(p.name for p in out.glob("*")) if out.exists() else []
    assert not [n for n in left if n.endswith(".onnx") or n.startswith(".export-")], left


def test_cli_perturbed_weights_fail_parity_and_leave_no_model(checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "broken"
    proc = broken_cli("torch", "--checkpoint", str(checkpoint), "--out", str(out))
    assert proc.returncode != 0, proc.stdout
    assert "ONNX does not match PyTorch" in proc.stderr
    assert_no_model(out)


def test_cli_int8_gate_refuses_and_writes_no_model(checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "lossy"
    proc = broken_cli(
        "int8", "--checkpoint", str(checkpoint), "--out", str(out), "--quantize", "int8", "--calibration", "16"
    )
    assert proc.returncode != 0, proc.stdout
    assert "INT8 refused" in proc.stderr and "test accuracy drop" in proc.stderr
    assert_no_model(out)


def test_gate_refusal_keeps_a_previous_export_untouched(checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "kept"
    run_export(ExportConfig(checkpoint=checkpoint, out=out))
    before = (out / "model.onnx").read_bytes()
    with pytest.raises(AccuracyGateError):
        run_export(
            ExportConfig(checkpoint=checkpoint, out=out, quantize="int8", calibration=16), int8_hook=negate_logits
        )
    assert (out / "model.onnx").read_bytes() == before
    assert not (out / "model.int8.onnx").exists() and not list(out.glob(".export-*"))


def test_preprocess_parity_catches_a_drifted_service(checkpoint: Path) -> None:
    """Serving that rounds differently by two 8-bit levels must be reported, not averaged away."""
    from export.metadata import contract_from_checkpoint

    ckpt = load_checkpoint(checkpoint)
    contract = contract_from_checkpoint(ckpt, "t", "1")
    std = np.asarray(contract.preprocess.std, np.float32)[:, None, None]

    def drifted(img, spec):
        return preprocess(img, spec) + np.float32(2 / 255) / std

    p = compare_preprocessing(rebuild_model(ckpt), contract, generated_samples(4), serve=drifted)
    assert p.bit_exact == 0 and 1.99 < p.max_levels < 2.01
    assert failures(p) and "8-bit levels" in failures(p)[0]
