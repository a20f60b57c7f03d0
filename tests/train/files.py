"""Image files of every kind the GPU input path must route: JPEG variants the device takes, and the rest."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def photo(size: tuple[int, int] = (48, 36), seed: int = 0) -> Image.Image:
    """A smooth RGB picture (so decoders agree closely), (width, height)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0 : size[1], 0 : size[0]].astype(np.float64)
    chans = [127 + 90 * np.sin(x / rng.uniform(4, 9) + rng.uniform(0, 6)) * np.cos(y / 7) for _ in range(3)]
    return Image.fromarray(np.clip(np.stack(chans, -1), 0, 255).astype(np.uint8), "RGB")


def encode(img: Image.Image, fmt: str = "JPEG", **options) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


def with_orientation(img: Image.Image, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(img, exif=exif)


def kinds(size: tuple[int, int] = (48, 36), seed: int = 0) -> dict[str, bytes]:
    """name -> file bytes; the name says which route the file must take."""
    img = photo(size, seed)
    return {
        "baseline": encode(img, quality=90),
        "progressive": encode(img, quality=90, progressive=True),
        "exif-upright": with_orientation(img, 1),
        "png": encode(img, "PNG"),
        "grayscale": encode(img.convert("L")),
        "cmyk": encode(img.convert("CMYK")),
        "rgb-jpeg": encode(img, keep_rgb=True),
        "exif-rotated": with_orientation(img, 6),
    }


ROUTE = {
    "baseline": "device",
    "progressive": "progressive",
    "exif-upright": "device",
    "png": "not-jpeg",
    "grayscale": "grayscale",
    "cmyk": "cmyk",
    "rgb-jpeg": "rgb-jpeg",
    "exif-rotated": "exif-orientation",
}
