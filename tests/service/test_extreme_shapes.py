"""Extreme shapes: the centre-window resize stays within one 8-bit level of the full torchvision resize."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import core.imaging as imaging
from core.contract import PreprocessSpec

SPEC = PreprocessSpec(resize_shorter=37, crop=(32, 32), mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))


def full_resize_then_crop(img: Image.Image) -> np.ndarray:
    new_w, new_h = imaging.resized_size(img.size, SPEC.resize_shorter)
    resized = img.resize((new_w, new_h), Image.Resampling.BILINEAR)
    return np.asarray(imaging.center_crop(resized, SPEC.crop), dtype=np.int16)


@pytest.mark.parametrize("size", [(2, 3000), (3000, 2), (40, 500), (7, 1001)])
def test_window_path_is_within_one_level(size: tuple[int, int], monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(sum(size))
    img = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    exact = full_resize_then_crop(img)
    assert np.array_equal(np.asarray(imaging.resize_and_crop(img, SPEC), dtype=np.int16), exact)  # under budget
    monkeypatch.setattr(imaging, "_EXACT_RESIZE_BUDGET", 0)  # force the centre-window path
    window = np.asarray(imaging.resize_and_crop(img, SPEC), dtype=np.int16)
    assert window.shape == exact.shape and np.abs(window - exact).max() <= 1


def test_huge_strip_takes_the_window_path() -> None:
    """20000x2 at a 256 short side would be 2,560,000x256 pixels resized; the window keeps it at 224x224."""
    spec = PreprocessSpec(resize_shorter=256, crop=(224, 224), mean=(0.5,) * 3, std=(0.5,) * 3)
    assert np.prod(imaging.resized_size((20000, 2), 256)) > imaging._EXACT_RESIZE_BUDGET
    x = imaging.preprocess(Image.new("RGB", (20000, 2), (255, 0, 0)), spec)
    assert x.shape == (3, 224, 224) and np.allclose(x[0], 1.0) and np.allclose(x[1:], -1.0)
