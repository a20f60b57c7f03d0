"""The GPU input path end to end on a CPU: DataLoader of raw batches -> decoded, augmented device batches.

The producer thread (used on CUDA) must give exactly the batches of the inline
path, stop cleanly when the consumer stops early, and hand its errors over;
the batches must not depend on the worker count.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from torch.utils.data import DataLoader, RandomSampler  # noqa: E402

from core.contract import IMAGENET_MEAN, IMAGENET_STD  # noqa: E402
from tests.train.files import kinds  # noqa: E402
from train.augment import EpochSampler, Recipe  # noqa: E402
from train.batches import DeviceBatches  # noqa: E402
from train.data import Entry  # noqa: E402
from train.gpu_augment import BatchAugment  # noqa: E402
from train.gpu_decode import DeviceDecoder, RawImages, collate_raw  # noqa: E402

pytestmark = [pytest.mark.torch]
RECIPE = Recipe((24, 24))


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Entry]]:
    root = tmp_path_factory.mktemp("mixed")
    (root / "a").mkdir()
    entries = []
    for k in range(3):  # 24 files, every kind, sizes vary
        for name, raw in kinds((40 + 9 * k, 30 + 5 * k), seed=k).items():
            (root / "a" / f"{name}-{k}").write_bytes(raw)
            entries.append(Entry(f"a/{name}-{k}", len(entries) % 4, "train", ""))
    return root, entries


def batches(files, workers: int = 0, overlap: bool = False, epoch: int = 1) -> DeviceBatches:
    root, entries = files
    ds = RawImages(root, entries, RECIPE, seed=0)
    sampler = EpochSampler(RandomSampler(ds, generator=torch.Generator().manual_seed(epoch)))
    sampler.set_epoch(epoch)
    loader = DataLoader(ds, batch_size=5, sampler=sampler, num_workers=workers, collate_fn=collate_raw)
    return DeviceBatches(
        loader, DeviceDecoder(torch.device("cpu")), BatchAugment(RECIPE, IMAGENET_MEAN, IMAGENET_STD), overlap
    )


def collect(it) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(x.clone(), y.clone()) for x, y in it]


def test_batches_have_the_shapes_the_model_takes_and_every_file_is_counted(files) -> None:
    source = batches(files)
    out = collect(source)
    assert len(out) == len(source) == 5
    assert [x.shape for x, _ in out] == [(5, 3, 24, 24)] * 4 + [(4, 3, 24, 24)]
    assert all(x.dtype == torch.float32 and y.dtype == torch.int64 for x, y in out)
    assert source.counts == {
        "device": 6,
        "progressive": 3,
        "not-jpeg": 3,
        "grayscale": 3,
        "cmyk": 3,
        "rgb-jpeg": 3,
        "exif-orientation": 3,
    }


def test_the_producer_thread_gives_the_inline_batches(files) -> None:
    inline, threaded = collect(batches(files)), collect(batches(files, overlap=True))
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(inline, threaded, strict=True))


def test_the_worker_count_changes_nothing(files) -> None:
    alone, two = collect(batches(files)), collect(batches(files, workers=2))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(alone, two, strict=True))
    assert not torch.equal(alone[0][0], collect(batches(files, epoch=2))[0][0])  # another epoch, another draw


def test_stopping_early_ends_the_producer_and_a_new_pass_starts_clean(files) -> None:
    source = batches(files, overlap=True)
    before = threading.active_count()
    it = iter(source)
    next(it)
    it.close()  # what a `break` out of the training loop does
    assert threading.active_count() == before
    assert len(collect(source)) == 5


def test_a_producer_error_reaches_the_training_loop(files, tmp_path: Path) -> None:
    root, entries = files
    ds = RawImages(tmp_path, entries, RECIPE, seed=0)  # no such files there
    loader = DataLoader(ds, batch_size=5, sampler=EpochSampler(range(len(ds))), collate_fn=collate_raw)  # type: ignore[arg-type]
    source = DeviceBatches(
        loader, DeviceDecoder(torch.device("cpu")), BatchAugment(RECIPE, (0.5,) * 3, (0.5,) * 3), True
    )
    with pytest.raises(FileNotFoundError):
        collect(source)
