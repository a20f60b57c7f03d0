"""Serving's preprocessing (numpy + Pillow) against training's (torchvision) on the same files.

The model was trained and tested on torchvision's eval transform; the service
reimplements it without torch. If the two drift, the served model sees inputs
it was never evaluated on, and nothing else would notice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
from PIL import Image

from core.contract import ModelContract, PreprocessSpec
from core.imaging import load_image, preprocess
from export.parity import torch_logits
from export.samples import Sample
from train.transforms import reference_eval_transform

MAX_LEVELS = 1.0  # one 8-bit level: what a rounding difference in resampling can produce


@dataclass
class PreprocessParity:
    n: int
    max_abs_diff: float  # in normalised units, as the model sees them
    max_levels: float  # the same difference in 8-bit levels: |diff| * std * 255, worst channel
    bit_exact: int  # tensors identical to the last bit
    top1_agreement: float  # the model fed with each tensor
    worst_file: str

    def as_dict(self) -> dict:
        return asdict(self)


def compare_preprocessing(
    model: torch.nn.Module,
    contract: ModelContract,
    samples: list[Sample],
    serve: Callable[[Image.Image, PreprocessSpec], np.ndarray] = preprocess,
) -> PreprocessParity:
    """Decode each file once with the shared rule, then preprocess it both ways and compare.

    ``serve`` is the service's preprocessing; tests pass a drifted one to prove the check can fail.
    """
    spec = contract.preprocess
    tv = reference_eval_transform(spec)
    std255 = np.asarray(spec.std, dtype=np.float64)[:, None, None] * 255.0  # (C, 1, 1)
    served, trained = [], []
    worst, worst_levels, worst_file, exact = 0.0, 0.0, "", 0
    for s in samples:
        img = load_image(s.data, contract.input.color)
        a = serve(img, spec)
        b = tv(img).numpy()
        if a.shape != b.shape:
            raise ValueError(f"{s.name}: service gives {a.shape}, torchvision {b.shape}")
        diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
        levels = float((diff * std255).max())
        exact += int(np.array_equal(a, b))
        if levels >= worst_levels:
            worst, worst_levels, worst_file = float(diff.max()), levels, s.name
        served.append(a)
        trained.append(b)
    agree = _agreement(model, np.stack(served), np.stack(trained)) if samples else 1.0
    return PreprocessParity(len(samples), worst, worst_levels, exact, agree, worst_file)


def _agreement(model: torch.nn.Module, a: np.ndarray, b: np.ndarray, batch: int = 16) -> float:
    same = sum(
        int((torch_logits(model, a[i : i + batch]).argmax(1) == torch_logits(model, b[i : i + batch]).argmax(1)).sum())
        for i in range(0, len(a), batch)
    )
    return same / len(a)


def failures(p: PreprocessParity, max_levels: float = MAX_LEVELS) -> list[str]:
    """What makes this parity unacceptable (empty when it passes)."""
    problems = []
    if not p.max_levels <= max_levels + 1e-3:  # float32 noise on an exact one-level step
        problems.append(f"max difference {p.max_levels:.3f} 8-bit levels > {max_levels:g} (worst: {p.worst_file})")
    if p.top1_agreement < 1.0:
        problems.append(f"top-1 agreement {p.top1_agreement:.4f} < 1")
    return problems
