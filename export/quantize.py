"""Static INT8 quantization (QDQ) with onnxruntime, and the accuracy gate it must pass.

Settings follow what runs fast and accurately on x86 CPUs with VNNI: QDQ
format, per-channel int8 weights, uint8 activations, no reduced range.
Calibration tensors must be preprocessed exactly as serving does; a
calibration set preprocessed differently is the usual cause of collapse.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

SETTINGS = {
    "format": "QDQ",
    "per_channel": True,
    "activations": "QUInt8",
    "weights": "QInt8",
    "reduce_range": False,
    "calibration_method": "MinMax",
}


class ArrayReader(CalibrationDataReader):
    """Feeds (N, C, H, W) calibration tensors to the calibrator ``batch`` at a time."""

    def __init__(self, x: np.ndarray, input_name: str, batch: int = 8) -> None:
        self._batches = iter(
            [{input_name: np.ascontiguousarray(x[i : i + batch], dtype=np.float32)} for i in range(0, len(x), batch)]
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)


def quantize_int8(fp32: Path, dest: Path, calibration: np.ndarray, input_name: str) -> None:
    """``fp32`` (a file) -> ``dest``: shape inference + fusion, then static QDQ quantization."""
    if len(calibration) == 0:
        raise ValueError("INT8 needs at least one calibration image")
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(fp32), str(pre))
        quantize_static(
            str(pre),
            str(dest),
            ArrayReader(calibration, input_name),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            reduce_range=False,
            calibrate_method=CalibrationMethod.MinMax,
        )


@dataclass
class Gate:
    """The INT8 verdict. ``drop`` in accuracy points; basis says what was measured."""

    drop: float
    basis: str  # "test accuracy" (labelled test split) or "top-1 disagreement" (no labels)
    max_drop: float

    @property
    def passed(self) -> bool:
        return self.drop <= self.max_drop


def gate(fp32_acc: float | None, int8_acc: float | None, agreement: float, max_drop: float) -> Gate:
    """Accuracy drop on the test split; without labels, the disagreement rate, which bounds it from above."""
    if fp32_acc is not None and int8_acc is not None:
        return Gate((fp32_acc - int8_acc) * 100.0, "test accuracy", max_drop)
    return Gate((1.0 - agreement) * 100.0, "top-1 disagreement with FP32 (no labels)", max_drop)
