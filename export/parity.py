"""Parity that can fail: PyTorch and onnxruntime on the same inputs."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import onnxruntime as ort
import torch


@dataclass
class Parity:
    max_abs_diff: float
    top1_agreement: float
    n: int
    batch_sizes: list[int]

    def as_dict(self) -> dict:
        return asdict(self)


def compare(model: torch.nn.Module, onnx_bytes: bytes, inputs: np.ndarray, input_name: str,
            batch_sizes: tuple[int, ...] = (1, 8)) -> Parity:
    """Run ``inputs`` (N, C, H, W) through both at each batch size; report worst diff and top-1 agreement."""
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    worst, agree, total = 0.0, 0, 0
    for bs in batch_sizes:
        for i in range(0, len(inputs), bs):
            chunk = inputs[i : i + bs].astype(np.float32)
            with torch.inference_mode():
                ref = model.eval()(torch.from_numpy(chunk)).numpy()
            (got,) = session.run(None, {input_name: chunk})
            worst = max(worst, float(np.abs(ref - got).max()))
            agree += int((ref.argmax(1) == got.argmax(1)).sum())
            total += len(chunk)
    return Parity(worst, agree / max(total, 1), total, list(batch_sizes))
