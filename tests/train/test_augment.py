"""The per-sample augmentation draws: distributed as torchvision's recipe, and keyed by (seed, epoch, index).

The distributions are compared with torchvision's own samplers
(``RandomRotation.get_params``, ``RandomResizedCrop.get_params``, the flip's
``torch.rand(1) < 0.5``) by two-sample Kolmogorov-Smirnov statistics at fixed
seeds; a deliberately wrong recipe must fail the same check.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from PIL import Image  # noqa: E402
from torchvision import transforms as T  # noqa: E402

from core.contract import IMAGENET_MEAN, IMAGENET_STD, PreprocessSpec  # noqa: E402
from train.augment import (  # noqa: E402
    AugParams,
    EpochSampler,
    Recipe,
    RecipeTransform,
    SeededSamples,
    apply_to_pil,
    sample_params,
    sample_rng,
)
from train.transforms import train_transform  # noqa: E402

pytestmark = [pytest.mark.torch]
N = 4000
KS_CRITICAL = 1.95 * math.sqrt(2 / N)  # two-sample KS critical value at alpha = 0.001 for N and N draws: ~0.044
RECIPE = Recipe((224, 224), rotation=25.0, scale=(0.08, 1.0))


def critical(n: int, m: int) -> float:
    return 1.95 * math.sqrt((n + m) / (n * m))


def ks(a: np.ndarray, b: np.ndarray) -> float:
    """Largest gap between the two empirical CDFs."""
    a, b = np.sort(a), np.sort(b)
    grid = np.concatenate([a, b])
    return float(np.abs(np.searchsorted(a, grid, "right") / len(a) - np.searchsorted(b, grid, "right") / len(b)).max())


def ours(size: tuple[int, int], recipe: Recipe = RECIPE) -> np.ndarray:
    """(N, 6) rows of our draws for an image of size (w, h), keys (seed 0, epoch 1, i)."""
    return np.array([sample_params(sample_rng(0, 1, i), size, recipe).row() for i in range(N)])


@functools.lru_cache
def torchvision_draws(size: tuple[int, int], recipe: Recipe = RECIPE) -> np.ndarray:
    """(N, 6) rows drawn by torchvision's own samplers, in the recipe's order."""
    torch.manual_seed(0)
    img = torch.empty(3, size[1], size[0])
    rows = []
    for _ in range(N):
        angle = T.RandomRotation.get_params([-recipe.rotation, recipe.rotation])
        top, left, h, w = T.RandomResizedCrop.get_params(img, list(recipe.scale), list(recipe.ratio))
        rows.append([angle, top, left, h, w, float(torch.rand(1) < 0.5)])
    return np.array(rows)


def statistics(rows: np.ndarray, size: tuple[int, int]) -> dict[str, np.ndarray]:
    """What the recipe specifies: angle, area fraction, log aspect ratio, relative position of the box."""
    w_img, h_img = size
    angle, top, left, h, w = (rows[:, k] for k in range(5))
    free_h, free_w = h_img - h, w_img - w
    return {
        "angle": angle,
        "area": h * w / (h_img * w_img),
        "log_ratio": np.log(w / h),
        "top": top[free_h > 0] / free_h[free_h > 0],
        "left": left[free_w > 0] / free_w[free_w > 0],
    }


@pytest.mark.parametrize("size", [(400, 300), (300, 420), (900, 60)], ids=["landscape", "portrait", "strip"])
def test_draws_are_distributed_as_torchvision_samplers(size: tuple[int, int]) -> None:
    a, b = ours(size), torchvision_draws(size)
    sa, sb = statistics(a, size), statistics(b, size)
    gaps = {k: (ks(sa[k], sb[k]), critical(len(sa[k]), len(sb[k]))) for k in sa}
    assert all(gap < limit for gap, limit in gaps.values()), gaps
    assert min(len(v) for v in sa.values()) > 20  # boxes that could move, in each direction
    assert -25 <= a[:, 0].min() < -24.5 and 24.5 < a[:, 0].max() <= 25  # the whole rotation range, no more
    assert abs(a[:, 5].mean() - 0.5) < 4 * math.sqrt(0.25 / N)  # flip probability 0.5
    assert abs(a[:, 5].mean() - b[:, 5].mean()) < 6 * math.sqrt(0.5 / N)
    boxes_inside = (a[:, 1] >= 0) & (a[:, 2] >= 0) & (a[:, 1] + a[:, 3] <= size[1]) & (a[:, 2] + a[:, 4] <= size[0])
    assert boxes_inside.all()


def test_the_ks_check_catches_a_wrong_recipe() -> None:
    """Power: another crop scale or rotation range is detected by the same statistic."""
    size = (400, 300)
    right = statistics(torchvision_draws(size), size)
    narrow = statistics(ours(size, Recipe((224, 224), rotation=20.0, scale=(0.2, 1.0))), size)
    assert ks(narrow["area"], right["area"]) > KS_CRITICAL
    assert ks(narrow["angle"], right["angle"]) > KS_CRITICAL


def test_strip_images_fall_back_to_the_centre_crop_as_often_as_torchvision() -> None:
    size = (900, 60)  # ratio 15: most tries fail, as in torchvision
    a, b = ours(size), torchvision_draws(size)
    centre = [60 // 2 - 30, (900 - 80) // 2, 60, 80]  # top, left, h, w of the fallback (ratio 4/3 max)
    rate_a = np.all(a[:, 1:5] == centre, axis=1).mean()
    rate_b = np.all(b[:, 1:5] == centre, axis=1).mean()
    assert rate_a > 0.05 and abs(rate_a - rate_b) < 6 * math.sqrt(rate_b * (1 - rate_b) / N)


def test_no_flip_and_no_rotation_are_honoured() -> None:
    rows = ours((400, 300), Recipe((224, 224), rotation=0.0, hflip=False))
    assert (rows[:, 0] == 0).all() and (rows[:, 5] == 0).all()


def test_a_draw_depends_on_seed_epoch_and_index_only() -> None:
    draw = [sample_params(sample_rng(7, 3, 11), (400, 300), RECIPE) for _ in range(2)]
    assert draw[0] == draw[1]
    others = {
        sample_params(sample_rng(*key), (400, 300), RECIPE) for key in [(8, 3, 11), (7, 4, 11), (7, 3, 12), (7, 3, 11)]
    }
    assert len(others) == 4


def _photo(size: tuple[int, int] = (96, 72)) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB")


def test_applying_a_draw_is_exactly_the_torchvision_recipe() -> None:
    """train_transform (RandomRotation, RandomResizedCrop, flip) with its own draws == apply_to_pil with them."""
    spec = PreprocessSpec(resize_shorter=37, crop=(32, 32), mean=IMAGENET_MEAN, std=IMAGENET_STD)
    recipe = Recipe((32, 32), rotation=25.0)
    img = _photo()
    for seed in range(5):
        torch.manual_seed(seed)
        expected = train_transform(spec, 25.0, True, 0.08)(img)
        torch.manual_seed(seed)
        angle = T.RandomRotation.get_params([-25.0, 25.0])
        top, left, h, w = T.RandomResizedCrop.get_params(img, [0.08, 1.0], [3 / 4, 4 / 3])  # type: ignore[arg-type]
        flip = bool(torch.rand(1) < 0.5)
        out = apply_to_pil(img, AugParams(angle, top, left, h, w, flip), recipe)
        got = T.Normalize(IMAGENET_MEAN, IMAGENET_STD)(T.ToTensor()(out))
        assert torch.equal(got, expected)


def test_seeded_samples_give_the_same_tensor_for_the_same_key_in_any_order() -> None:
    images = [_photo(), _photo((50, 80))]

    class Pictures:
        def __init__(self, transform: RecipeTransform) -> None:
            self.transform = transform

        def __len__(self) -> int:
            return len(images)

        def __getitem__(self, i: int):
            return self.transform(images[i]), i

    transform = RecipeTransform(Recipe((24, 24)), IMAGENET_MEAN, IMAGENET_STD)
    ds = SeededSamples(Pictures(transform), transform, seed=3)
    first = [ds[(1, 0)][0], ds[(1, 1)][0], ds[(2, 0)][0]]
    again = [ds[(2, 0)][0], ds[(1, 1)][0], ds[(1, 0)][0]]
    assert torch.equal(first[0], again[2]) and torch.equal(first[1], again[1]) and torch.equal(first[2], again[0])
    assert not torch.equal(first[0], first[2])  # another epoch, another draw


def test_epoch_sampler_tags_indices_with_the_epoch() -> None:
    g = torch.Generator().manual_seed(0)
    sampler = EpochSampler(torch.utils.data.RandomSampler(range(5), generator=g))
    sampler.set_epoch(4)
    keys = list(sampler)
    assert len(sampler) == 5 and {e for e, _ in keys} == {4} and sorted(i for _, i in keys) == list(range(5))
