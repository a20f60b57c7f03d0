"""Parity that can fail: PyTorch and onnxruntime on the same inputs."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from core.runtime import open_session


@dataclass
class Parity:
    max_abs_diff: float  # inf when either side produced NaN/inf or a wrong shape
    top1_agreement: float
    n: int  # inputs per batch size (each input runs once at every batch size)
    batch_sizes: list[int]
    disagreements: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def torch_logits(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return model.eval()(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()


def _worst(ref: np.ndarray, got: np.ndarray) -> float:
    """max |ref - got|, but a NaN, an inf or a shape mismatch is a failure, never a 0."""
    if ref.shape != got.shape or not (np.isfinite(ref).all() and np.isfinite(got).all()):
        return float("inf")
    return float(np.abs(ref - got).max()) if ref.size else 0.0


def compare(
    model: torch.nn.Module,
    onnx_bytes: bytes,
    inputs: np.ndarray,
    input_name: str,
    batch_sizes: tuple[int, ...] = (1, 8),
) -> Parity:
    """Run ``inputs`` (N, C, H, W) through both at each batch size; report worst diff and top-1 agreement.

    Batch 1 and a larger batch are both run because a wrongly fixed batch axis
    or batch-dependent op (BatchNorm left in training mode) shows only in one.
    """
    sess = open_session(onnx_bytes)
    worst, agree, total = 0.0, 0, 0
    for bs in batch_sizes:
        for i in range(0, len(inputs), bs):
            chunk = np.ascontiguousarray(inputs[i : i + bs], dtype=np.float32)
            ref = torch_logits(model, chunk)
            (got,) = sess.run(None, {input_name: chunk})
            worst = max(worst, _worst(ref, got))
            if ref.shape == got.shape:
                agree += int((ref.argmax(1) == got.argmax(1)).sum())
            total += len(chunk)
    return Parity(worst, agree / max(total, 1), len(inputs), list(batch_sizes), total - agree)
