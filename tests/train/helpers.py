"""Files the training tests write themselves: images, broken images, Fashion-MNIST IDX files."""

from __future__ import annotations

import gzip
import io
import struct
from pathlib import Path

import numpy as np
from PIL import Image


def jpeg_bytes(color: tuple[int, int, int], size: tuple[int, int] = (40, 30), seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    arr = np.clip(
        np.full((size[1], size[0], 3), color, dtype=np.float64) + rng.normal(0, 20, (size[1], size[0], 3)), 0, 255
    ).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr, "RGB").save(buf, "JPEG", quality=90)
    return buf.getvalue()


def write_folder_dataset(root: Path, per_class: int = 12, classes: tuple[str, ...] = ("red", "green", "blue")) -> Path:
    """A class-per-folder tree of small, distinct JPEGs (one colour per class)."""
    colours = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220)}
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        colour = colours.get(name, (120, 120, 120))
        for i in range(per_class):
            (root / name / f"{i:03d}.jpg").write_bytes(jpeg_bytes(colour, seed=c * 1000 + i))
    return root


def _idx(array: np.ndarray) -> bytes:
    """IDX format: magic (0, 0, type 0x08 = uint8, ndim), big-endian dims, then the bytes."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def fashion_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n 28x28 images whose class is a bright horizontal band at row 2 * label, plus noise: learnable."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    images = rng.integers(0, 40, (n, 28, 28))
    for i, label in enumerate(labels):
        images[i, 2 * label + 4 : 2 * label + 8, 4:24] = 230
    return images.astype(np.uint8), labels.astype(np.uint8)


def write_fashion_mnist(root: Path, n_train: int = 200, n_test: int = 50, gz: bool = False) -> Path:
    """Write the four files where torchvision's FashionMNIST(root) looks: root/FashionMNIST/raw/."""
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, n, seed in (("train", n_train, 1), ("t10k", n_test, 2)):
        images, labels = fashion_images(n, seed)
        for name, arr in ((f"{prefix}-images-idx3-ubyte", images), (f"{prefix}-labels-idx1-ubyte", labels)):
            data = _idx(arr)
            if gz:
                (raw / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (raw / name).write_bytes(data)
    return root
