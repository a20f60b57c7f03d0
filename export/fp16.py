"""FP16 copy for GPU serving: half the size, float32 inputs and outputs so callers do not change.

There is no GPU here, so the check runs the FP16 graph with onnxruntime's CPU
provider. That proves the converted graph loads, keeps float32 I/O, and that
rounding weights and activations to half precision keeps the logits close;
it says nothing about speed or numerics on a GPU's FP16 kernels.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import onnx
from onnxruntime.transformers.float16 import convert_float_to_float16

from core.runtime import open_session
from export.evaluate import agreement, run_batches

RTOL = 1e-2  # max |diff| relative to the largest FP32 logit: half precision keeps ~3 significant digits


@dataclass
class Fp16Check:
    ran_on_cpu: bool
    max_abs_diff: float | None = None
    max_rel_diff: float | None = None
    top1_agreement: float | None = None
    n: int = 0
    rtol: float = RTOL
    note: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def to_fp16(proto: onnx.ModelProto) -> onnx.ModelProto:
    return convert_float_to_float16(proto, keep_io_types=True)


def float32_io(proto: onnx.ModelProto) -> bool:
    return all(
        v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT for v in [*proto.graph.input, *proto.graph.output]
    )


def check_fp16(fp16_bytes: bytes, fp32_logits: np.ndarray, x: np.ndarray, rtol: float = RTOL) -> Fp16Check:
    """Run the FP16 model on the CPU if onnxruntime can, and compare with the FP32 logits of the same ``x``."""
    try:
        got = run_batches(open_session(fp16_bytes), x).logits
    except Exception as exc:  # noqa: BLE001 - a CPU build without FP16 kernels is a finding, not a crash
        return Fp16Check(False, note=f"onnxruntime CPU could not run it: {exc}"[:300])
    diff = float(np.abs(got - fp32_logits).max()) if np.isfinite(got).all() else float("inf")
    scale = max(float(np.abs(fp32_logits).max()), 1e-6)
    return Fp16Check(
        True,
        diff,
        diff / scale,
        agreement(got, fp32_logits),
        len(x),
        rtol,
        "onnxruntime CPUExecutionProvider; no GPU measured",
    )


def fp16_failures(c: Fp16Check) -> list[str]:
    if not c.ran_on_cpu:
        return []
    if c.max_rel_diff is None or not c.max_rel_diff <= c.rtol:
        return [f"FP16 logits differ from FP32 by {c.max_rel_diff:.3g} of the largest logit (> {c.rtol:g})"]
    return []
