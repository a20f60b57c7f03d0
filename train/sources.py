"""Data sources: where images come from, with their recipe profile, normalisation and preparation.

``--data`` picks one: ``synthetic`` (the offline demo), ``fashion-mnist[:ROOT]``
(28 px grayscale, through torchvision's loader), or any image folder
(Animals-10 or class-per-folder). Each source says which config defaults it
changes, which mean/std its inputs are normalised with, and how it is split.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.contract import IMAGENET_MEAN, IMAGENET_STD
from train import fashion
from train.data import Entry, ImageFileDataset, SplitData, prepare_split
from train.synthetic import make_synthetic, parse_size

if TYPE_CHECKING:
    from train.config import TrainConfig

Transform = Callable[[Any], Any]


def _image_files(data: SplitData, entries: list[Entry], transform: Transform) -> Any:
    return ImageFileDataset(data.root, entries, data.color, transform)


def _fashion_images(data: SplitData, entries: list[Entry], transform: Transform) -> Any:
    return fashion.FashionDataset(data.extra["sets"], entries, transform)


@dataclass(frozen=True)
class DataSource:
    name: str
    prepare: Callable[[TrainConfig, bool, bool], SplitData]  # (cfg, reuse the split, show progress)
    profile: dict[str, Any] = field(default_factory=dict)  # TrainConfig defaults this source changes
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    images: Callable[[SplitData, list[Entry], Transform], Any] = _image_files

    def dataset(self, data: SplitData, split: str, transform: Transform) -> Any:
        """A map-style dataset of (transformed image, label) for one split."""
        return self.images(data, data.split_entries(split), transform)


def _folder(cfg: TrainConfig, reuse: bool, progress: bool) -> SplitData:
    root = Path(cfg.data)
    if not root.is_dir():
        raise FileNotFoundError(f"--data {cfg.data}: not a folder (see docs/training.md)")
    return prepare_split(root, cfg.out, cfg.seed, reuse, cfg.scan_workers, progress)


def _synthetic(cfg: TrainConfig, reuse: bool, progress: bool) -> SplitData:
    size = parse_size(cfg.synthetic_size) if cfg.synthetic_size else None
    root = make_synthetic(cfg.out / "synthetic-data", per_class=cfg.synthetic_per_class, seed=cfg.seed, size=size)
    return prepare_split(root, cfg.out, cfg.seed, reuse, cfg.scan_workers, progress)


def _fashion(cfg: TrainConfig, reuse: bool, progress: bool) -> SplitData:
    return fashion.prepare(fashion.parse_source(cfg.data), cfg.out, cfg.seed, reuse, cfg.download)


FOLDER, SYNTHETIC, FASHION = "folder", "synthetic", "fashion-mnist"
_SOURCES = {
    FOLDER: DataSource(FOLDER, _folder),
    # The offline walking skeleton: a tiny CNN at 64 px that learns in seconds on a CPU; one
    # cosine half-period over the run ends at a low learning rate, so the demo model is confident.
    SYNTHETIC: DataSource(
        SYNTHETIC,
        _synthetic,
        {"arch": "tinycnn", "weights": "none", "img_size": 64, "epochs": 6, "lr": 5e-3, "t_max": 6},
    ),
    # Already 28x28 and centred: no rotation, mild crops, eval keeps the image as it is.
    FASHION: DataSource(
        FASHION,
        _fashion,
        {
            "arch": "tinycnn",
            "weights": "none",
            "img_size": 28,
            "resize": 28,
            "epochs": 5,
            "lr": 3e-3,
            "t_max": 5,
            "rotation": 0.0,
            "crop_scale": 0.7,
        },
        mean=fashion.MEAN,
        std=fashion.STD,
        images=_fashion_images,
    ),
}


def source_for(data: str) -> DataSource:
    """``synthetic``, ``fashion-mnist`` / ``fashion-mnist:ROOT``, else an image folder."""
    name = data.partition(":")[0] if data.startswith(FASHION) else data
    return _SOURCES.get(name, _SOURCES[FOLDER])


def sources() -> list[DataSource]:
    return list(_SOURCES.values())
