"""The training augmentation, drawn per sample from (seed, epoch, index) instead of a worker's RNG.

The recipe is torchvision's ``RandomRotation(d) -> RandomResizedCrop(s, scale,
ratio) -> RandomHorizontalFlip()``. Its random parameters are drawn here, with
the same distributions as torchvision's own samplers (``get_params``, tested
statistically in tests/train/test_augment.py), from a generator seeded by the
sample's key. So:

* an augmentation depends on nothing but (seed, epoch, index): the worker count,
  persistent workers, or a resume in the middle of a run change nothing;
* the CPU path (Pillow, in DataLoader workers) and the GPU path (batched on the
  device, ``train/gpu_augment.py``) apply the very same parameters to a sample.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image
from torch.utils.data import Sampler
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as F

from core.contract import PreprocessSpec

_MASK64 = (1 << 64) - 1
PARAMS = ("angle", "top", "left", "height", "width", "flip")  # one row of a batch's parameter tensor


@dataclass(frozen=True)
class Recipe:
    """What the training augmentation does: the flags ``--rotation``, ``--crop-scale``, ``--no-hflip``."""

    crop: tuple[int, int]  # (height, width) of the network input
    rotation: float = 25.0  # degrees, uniform in [-rotation, rotation]; 0: no rotation
    scale: tuple[float, float] = (0.08, 1.0)  # RandomResizedCrop area fraction
    ratio: tuple[float, float] = (3 / 4, 4 / 3)  # RandomResizedCrop aspect ratio (w / h)
    hflip: bool = True  # flip with probability 0.5


def recipe_for(spec: PreprocessSpec, rotation: float, hflip: bool, crop_scale: float) -> Recipe:
    return Recipe((spec.crop[0], spec.crop[1]), rotation, (crop_scale, 1.0), hflip=hflip)


@dataclass(frozen=True)
class AugParams:
    """One sample's draw: rotation angle (counter-clockwise degrees), crop box, flip."""

    angle: float
    top: int
    left: int
    height: int
    width: int
    flip: bool

    def row(self) -> list[float]:
        return [self.angle, self.top, self.left, self.height, self.width, float(self.flip)]


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A well-mixed 64-bit seed per (run seed, epoch, dataset index): neighbouring keys give unrelated streams."""
    return _splitmix64(_splitmix64(_splitmix64(seed & _MASK64) ^ (epoch & _MASK64)) ^ (index & _MASK64))


def sample_rng(seed: int, epoch: int, index: int) -> random.Random:
    return random.Random(sample_seed(seed, epoch, index))


def _crop_box(rng: random.Random, width: int, height: int, recipe: Recipe) -> tuple[int, int, int, int]:
    """``RandomResizedCrop.get_params``: 10 tries at a random area and log-uniform ratio, else a centre crop."""
    area = height * width
    log_lo, log_hi = math.log(recipe.ratio[0]), math.log(recipe.ratio[1])
    for _ in range(10):
        target = area * rng.uniform(*recipe.scale)
        aspect = math.exp(rng.uniform(log_lo, log_hi))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return rng.randint(0, height - h), rng.randint(0, width - w), h, w
    in_ratio = width / height
    if in_ratio < min(recipe.ratio):
        w, h = width, int(round(width / min(recipe.ratio)))
    elif in_ratio > max(recipe.ratio):
        w, h = int(round(height * max(recipe.ratio))), height
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def sample_params(rng: random.Random, size: tuple[int, int], recipe: Recipe) -> AugParams:
    """One draw of the recipe for an image of ``size`` = (width, height); rotation keeps the size."""
    angle = rng.uniform(-recipe.rotation, recipe.rotation) if recipe.rotation else 0.0
    top, left, h, w = _crop_box(rng, size[0], size[1], recipe)
    flip = recipe.hflip and rng.random() < 0.5
    return AugParams(angle, top, left, h, w, flip)


def apply_to_pil(img: Image.Image, p: AugParams, recipe: Recipe) -> Image.Image:
    """The recipe's Pillow operations with given parameters (what ``T.Compose`` of the three does)."""
    if recipe.rotation:
        img = F.rotate(img, p.angle, InterpolationMode.NEAREST, fill=[0.0])
    img = F.resized_crop(img, p.top, p.left, p.height, p.width, list(recipe.crop), InterpolationMode.BILINEAR)
    return F.hflip(img) if p.flip else img


class RecipeTransform:
    """PIL image -> augmented, normalised (C, H, W) tensor, drawing from ``self.rng`` (set per sample)."""

    def __init__(self, recipe: Recipe, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        self.recipe, self.mean, self.std = recipe, list(mean), list(std)
        self.rng = random.Random(0)

    def __call__(self, img: Image.Image) -> torch.Tensor:
        img = apply_to_pil(img, sample_params(self.rng, img.size, self.recipe), self.recipe)
        return F.normalize(F.to_tensor(img), self.mean, self.std)


class SeededSamples:
    """A training dataset indexed by (epoch, index): reseeds the transform from the key, then reads the item.

    The wrapped dataset must call ``transform`` (the same object) once per item.
    """

    def __init__(self, dataset: Any, transform: RecipeTransform, seed: int) -> None:
        self.dataset, self.transform, self.seed = dataset, transform, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> Any:
        epoch, index = key
        self.transform.rng = sample_rng(self.seed, epoch, index)
        return self.dataset[index]


class EpochSampler(Sampler):
    """Yields (epoch, index) for each index of ``inner``: the epoch reaches persistent workers with the index."""

    def __init__(self, inner: Sampler) -> None:
        self.inner, self.epoch = inner, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if hasattr(self.inner, "set_epoch"):
            self.inner.set_epoch(epoch)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = self.epoch
        return ((epoch, int(i)) for i in self.inner)

    def __len__(self) -> int:
        return len(self.inner)  # type: ignore[arg-type]
