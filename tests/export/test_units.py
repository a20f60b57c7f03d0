"""The small decisions inside export: NaN is a failure, the gate's arithmetic, the generated shapes."""

from __future__ import annotations

import numpy as np
import pytest

from core.imaging import load_image
from export.parity import Parity, _worst
from export.pipeline import ParityError, check
from export.preprocess_parity import PreprocessParity, failures
from export.quantize import gate
from export.samples import GENERATED_SHAPES, generated_samples

pytestmark = [pytest.mark.torch]


def test_nan_logits_fail_parity() -> None:
    ref = np.zeros((2, 3), np.float32)
    assert _worst(ref, np.full((2, 3), np.nan, np.float32)) == float("inf")
    assert _worst(ref, np.zeros((2, 4), np.float32)) == float("inf")
    with pytest.raises(ParityError):
        check(Parity(float("nan"), 1.0, 2, [1]), atol=1e-4)


def test_gate_uses_test_accuracy_and_falls_back_to_disagreement() -> None:
    assert gate(0.90, 0.885, 0.99, 1.0).drop == pytest.approx(1.5) and not gate(0.90, 0.885, 0.99, 1.0).passed
    assert gate(0.90, 0.90, 0.95, 1.0).passed  # accuracy is what is gated when labels exist
    no_labels = gate(None, None, 0.995, 1.0)
    assert no_labels.drop == pytest.approx(0.5) and no_labels.passed and "disagreement" in no_labels.basis


def test_preprocess_failures_name_the_problem() -> None:
    ok = PreprocessParity(3, 0.017, 1.0, 2, 1.0, "a.png")
    assert failures(ok) == []
    assert "top-1" in failures(PreprocessParity(3, 0.0, 0.0, 3, 2 / 3, "a.png"))[0]


def test_generated_images_include_portrait_odd_grey_and_transparent() -> None:
    samples = generated_samples(len(GENERATED_SHAPES))
    sizes = [load_image(s.data, "RGB").size for s in samples]
    assert any(h > w for w, h in sizes) and any(w > 10 * h for w, h in sizes) and any(min(w, h) < 64 for w, h in sizes)
    assert {m for *_, m in GENERATED_SHAPES} >= {"RGB", "RGBA", "L", "P"}
    assert generated_samples(3)[2].data == generated_samples(3)[2].data  # seeded
