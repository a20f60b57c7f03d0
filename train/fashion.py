"""Fashion-MNIST through torchvision's loader: the project's second, grayscale classifier.

The official 60k train and 10k test images are pooled and split like any image
folder (stratified 80/10/10, byte-identical images kept in one split), so the
manifest and its sha256 mean the same thing for every data source. A manifest
entry names an image by its place in the official files: ``train/00012`` is
index 12 of the official training set, ``test/00003`` index 3 of the test set.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path

from core.imaging import to_color
from train.data import Entry, Item, SplitData, read_run_split, write_run_split

DEFAULT_ROOT = Path("data/fashion-mnist")
MEAN, STD = (0.2860,), (0.3530,)  # the training set's pixel statistics, as usually quoted
RAW_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
PARTS = ("train", "test")


def parse_source(data: str) -> Path:
    """``fashion-mnist`` -> the default root; ``fashion-mnist:PATH`` -> PATH (torchvision's ``root``)."""
    _, _, path = data.partition(":")
    return Path(path) if path else DEFAULT_ROOT


def _gunzip_local(root: Path) -> None:
    """Offline machines may hold only the four ``.gz`` files: unpack them where torchvision looks."""
    raw = root / "FashionMNIST" / "raw"
    for name in RAW_FILES:
        packed, plain = raw / f"{name}.gz", raw / name
        if packed.exists() and not plain.exists():
            with gzip.open(packed, "rb") as src, open(plain, "wb") as dst:
                shutil.copyfileobj(src, dst)


def load_sets(root: Path, download: bool) -> dict:
    """torchvision's ``FashionMNIST`` for the official train and test files (downloaded if allowed)."""
    from torchvision.datasets import FashionMNIST

    _gunzip_local(root)
    try:
        return {part: FashionMNIST(str(root), train=part == "train", download=download) for part in PARTS}
    except RuntimeError as exc:
        raise FileNotFoundError(
            f"Fashion-MNIST not found under {root}/FashionMNIST/raw/ ({', '.join(RAW_FILES)}, or their .gz); "
            "pass --data fashion-mnist:ROOT, or allow the download"
        ) from exc


def items(sets: dict) -> list[Item]:
    """One (name, label, sha256 of the 28x28 pixels) per official image."""
    out = []
    for part in PARTS:
        data, targets = sets[part].data.numpy(), sets[part].targets.tolist()
        out += [
            (f"{part}/{i:05d}", targets[i], hashlib.sha256(data[i].tobytes()).hexdigest()) for i in range(len(targets))
        ]
    return out


def prepare(root: Path, out: Path, seed: int, reuse: bool = False, download: bool = True) -> SplitData:
    """Load (or download) the files and write the run's split, like ``train.data.prepare_split``."""
    sets = load_sets(root, download and not reuse)
    if not (reuse and (out / "split.csv").exists()):
        write_run_split(out, items(sets), [], seed)
    entries, skipped, digest = read_run_split(out)
    classes = list(sets["train"].classes)
    return SplitData(
        root, classes, classes, entries, skipped, digest, kind="fashion-mnist", color="L", extra={"sets": sets}
    )


class FashionDataset:
    """Manifest entries -> torchvision's PIL images -> the shared color rule -> a transform."""

    def __init__(self, sets: dict, entries: list[Entry], transform: Callable) -> None:
        self.sets, self.entries, self.transform = sets, entries, transform

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i: int):
        e = self.entries[i]
        part, index = e.file.split("/")
        img, _ = self.sets[part][int(index)]  # PIL image, mode "L"
        return self.transform(to_color(img, "L")), e.label
