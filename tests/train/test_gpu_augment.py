"""The batched device augmentation, on CPU tensors: Pillow's geometry, the same draw as the CPU path.

Rotation alone must reproduce Pillow's ``rotate`` (NEAREST) pixel for pixel
(up to rounding ties); crop + resize must stay within a few 8-bit levels of
Pillow's antialiased ``resized_crop`` on a smooth image; a batch of images of
different sizes must give each sample what it gives alone.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from PIL import Image  # noqa: E402
from torchvision.transforms import functional as F  # noqa: E402

from train.augment import AugParams, Recipe, apply_to_pil, sample_params, sample_rng  # noqa: E402
from train.gpu_augment import BatchAugment, chunks  # noqa: E402

pytestmark = [pytest.mark.torch]
IDENTITY = ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))  # mean 0, std 1: the output is x / 255


def noise(w: int, h: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def smooth(w: int, h: int, seed: int = 0) -> np.ndarray:
    """Low-frequency colour waves: resampling filters agree on it to within a few levels."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    chans = [
        127 + 100 * np.sin(x / rng.uniform(6, 12) + rng.uniform(0, 6)) * np.cos(y / rng.uniform(6, 12))
        for _ in range(3)
    ]
    return np.clip(np.stack(chans, axis=-1), 0, 255).astype(np.uint8)


def chw(arr: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


def row(p: AugParams, arr: np.ndarray) -> list[float]:
    return [*p.row(), arr.shape[0], arr.shape[1]]


def run(arrays: list[np.ndarray], params: list[AugParams], crop: tuple[int, int], **kw) -> np.ndarray:
    """The batched augmentation, back in 8-bit units as (B, H, W, C) float."""
    augment = BatchAugment(Recipe(crop, rotation=25.0), *IDENTITY, **kw)
    rows = torch.tensor([row(p, a) for p, a in zip(params, arrays, strict=True)], dtype=torch.float32)
    out = augment([chw(a) for a in arrays], rows)
    return (out * 255).permute(0, 2, 3, 1).numpy()


@pytest.mark.parametrize("angle", [0.0, 17.3, -24.9, 90.0, 7.0])
def test_rotation_is_pillows_nearest_rotate(angle: float) -> None:
    arr = noise(61, 47)
    full = AugParams(angle, 0, 0, 47, 61, False)  # the box is the whole image, at its own size
    got = run([arr], [full], (47, 61))[0]
    want = np.asarray(F.rotate(Image.fromarray(arr), angle, fill=[0.0]), dtype=np.float64)  # type: ignore[arg-type]
    same = np.abs(got - want).max(axis=-1) < 0.01
    assert same.mean() >= (1.0 if angle in (0.0, 90.0) else 0.99)  # rounding ties aside, the same pixels


def test_rotation_turns_counter_clockwise() -> None:
    arr = np.zeros((40, 40, 3), np.uint8)
    arr[2:8, 30:38] = 255  # a block in the top-right corner
    got = run([arr], [AugParams(90.0, 0, 0, 40, 40, False)], (40, 40))[0]
    assert got[2:10, 2:8].mean() > 200 and got[30:38, 30:38].mean() < 1  # it went to the top-left


@pytest.mark.parametrize(
    "box",
    [(10, 20, 90, 120), (30, 40, 15, 20), (0, 0, 120, 160)],
    ids=["downscale", "upscale", "whole"],
)
def test_crop_and_resize_is_close_to_pillows_antialiased_resized_crop(box: tuple[int, int, int, int]) -> None:
    arr = smooth(160, 120)
    p = AugParams(0.0, *box, False)
    got = run([arr], [p], (32, 32))[0]
    want = np.asarray(F.resized_crop(Image.fromarray(arr), *box, [32, 32]), dtype=np.float64)  # type: ignore[arg-type]
    assert np.abs(got - want).mean() < 1.5 and np.abs(got - want).max() < 12


def test_the_same_draw_gives_the_cpu_paths_image() -> None:
    """Rotation, crop, resize and flip together, against apply_to_pil with the same parameters."""
    recipe = Recipe((48, 48), rotation=25.0)
    for i in range(12):
        arr = smooth(150, 110, seed=i)
        p = sample_params(sample_rng(0, 1, i), (150, 110), recipe)
        got = run([arr], [p], (48, 48))[0]
        want = np.asarray(apply_to_pil(Image.fromarray(arr), p, recipe), dtype=np.float64)
        assert np.abs(got - want).mean() < 1.0, (i, p)  # (the max is larger: fill edges move by a pixel)


def test_flip_mirrors_the_crop() -> None:
    arr = noise(50, 40)
    plain, flipped = (run([arr], [AugParams(10.0, 5, 6, 30, 30, f)], (30, 30))[0] for f in (False, True))
    assert np.array_equal(flipped, plain[:, ::-1])


def test_a_mixed_size_batch_gives_each_sample_what_it_gives_alone() -> None:
    arrays = [smooth(90, 60, 1), noise(40, 70, 2), smooth(120, 30, 3), noise(33, 33, 4)]
    recipe = Recipe((24, 24))
    params = [sample_params(sample_rng(5, 1, i), (a.shape[1], a.shape[0]), recipe) for i, a in enumerate(arrays)]
    batch = run(arrays, params, (24, 24))
    for i, (a, p) in enumerate(zip(arrays, params, strict=True)):
        alone = run([a], [p], (24, 24))[0]
        assert np.abs(batch[i] - alone).max() < 1e-3


def test_chunks_keep_the_canvas_within_budget_and_change_nothing() -> None:
    shapes = [(30, 40), (20, 20), (300, 400), (250, 500), (10, 10), (12, 12)]  # (h, w)
    parts = chunks(shapes, budget=300 * 500)
    assert [list(r) for r in parts] == [[0, 1], [2], [3], [4, 5]]
    assert all(len(r) * max(shapes[i][0] for i in r) * max(shapes[i][1] for i in r) <= 300 * 500 for r in parts)
    arrays = [smooth(w, h, k) for k, (h, w) in enumerate(shapes)]
    params = [AugParams(5.0 * k, 1, 2, 8, 9, k % 2 == 1) for k in range(len(shapes))]
    whole = run(arrays, params, (16, 16))
    split = run(arrays, params, (16, 16), budget=300 * 500)
    assert np.array_equal(whole, split)


def test_normalisation_and_memory_format() -> None:
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    arr = np.full((20, 30, 3), (200, 100, 50), np.uint8)
    augment = BatchAugment(Recipe((8, 8)), mean, std, channels_last=True)
    rows = torch.tensor([row(AugParams(0.0, 2, 3, 10, 10, False), arr)], dtype=torch.float32)
    out = augment([chw(arr)], rows)
    assert out.shape == (1, 3, 8, 8) and out.dtype == torch.float32
    assert out.is_contiguous(memory_format=torch.channels_last)
    want = torch.tensor([(v / 255 - m) / s for v, m, s in zip((200, 100, 50), mean, std, strict=True)])
    torch.testing.assert_close(out[0, :, 4, 4], want, rtol=0, atol=1e-5)
