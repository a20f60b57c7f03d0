"""Training's transforms: the recipe's augmentation, and the eval transform the service uses too.

Validation and test go through ``core.imaging.preprocess``, the function the
service calls, so the accuracy in the report is the accuracy of the tensors
the service computes. torchvision's own eval transform stays here as the
independent reference that export's parity gate and the tests compare against.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torchvision import transforms as T

from core.contract import PreprocessSpec
from core.imaging import preprocess


class ServingEval:
    """PIL image -> the service's (C, H, W) tensor (a class, so DataLoader workers can pickle it)."""

    def __init__(self, spec: PreprocessSpec) -> None:
        self.spec = spec

    def __call__(self, img: Image.Image) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(preprocess(img, self.spec)))


def eval_transform(spec: PreprocessSpec) -> ServingEval:
    """Validation and test: exactly the serving rule."""
    return ServingEval(spec)


def reference_eval_transform(spec: PreprocessSpec) -> T.Compose:
    """torchvision's Resize -> CenterCrop -> ToTensor -> Normalize: what the serving rule must reproduce."""
    return T.Compose(
        [
            T.Resize(spec.resize_shorter, interpolation=T.InterpolationMode.BILINEAR),
            T.CenterCrop(spec.crop),
            T.ToTensor(),
            T.Normalize(spec.mean, spec.std),
        ]
    )


def train_transform(
    spec: PreprocessSpec, rotation: float = 25.0, hflip: bool = True, crop_scale: float = 0.08
) -> T.Compose:
    """The reference recipe: RandomRotation(25), RandomResizedCrop, RandomHorizontalFlip."""
    steps: list = [T.RandomRotation(rotation)] if rotation else []
    steps.append(T.RandomResizedCrop(spec.crop, scale=(crop_scale, 1.0)))
    if hflip:
        steps.append(T.RandomHorizontalFlip())
    steps += [T.ToTensor(), T.Normalize(spec.mean, spec.std)]
    return T.Compose(steps)
