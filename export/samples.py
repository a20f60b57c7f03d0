"""Where export's images come from: the run's own split, or generated files when the data is gone.

Parity, calibration and the INT8 accuracy gate all want real images from the
run. A checkpoint copied to another machine has no data beside it, so every
consumer falls back to generated images and the report says which it used.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from train.data import image_root, manifest_sha256, read_manifest

log = logging.getLogger("export")


@dataclass(frozen=True)
class Sample:
    name: str
    data: bytes
    label: int | None = None  # output index; None for generated images


@dataclass(frozen=True)
class RunData:
    """The run's split, if its manifest and files are still where training left them."""

    root: Path | None
    entries: list  # train.data.Entry
    reason: str  # why the run's files are (not) used

    def samples(self, split: str, limit: int, seed: int = 0) -> list[Sample]:
        """Up to ``limit`` existing files of ``split`` (0 = all), in a seeded order that mixes the classes."""
        if self.root is None:
            return []
        entries = [e for e in self.entries if e.split == split and (self.root / e.file).is_file()]
        order = np.random.default_rng(seed).permutation(len(entries))  # the manifest is sorted by class folder
        picked = [entries[i] for i in order][: limit or None]
        return [Sample(e.file, (self.root / e.file).read_bytes(), e.label) for e in picked]


def find_run_data(ckpt: dict[str, Any], checkpoint: Path, data_root: Path | None = None) -> RunData:
    """Locate ``split.csv`` beside the checkpoint and the images under ``data_root`` (or the checkpoint's).

    The manifest is used only when its sha256 is the one recorded in the
    checkpoint: another split would make "test accuracy" a different number.
    """
    manifest = checkpoint.parent / "split.csv"
    root = image_root(Path(data_root)) if data_root else Path(ckpt.get("data_root") or "")
    if not manifest.is_file():
        return RunData(None, [], f"no {manifest}")
    if not root.is_dir() or str(root) in ("", "."):
        return RunData(None, [], f"data root {root} not found (use --data-root)")
    digest = manifest_sha256(manifest)
    if ckpt.get("split_sha256") and digest != ckpt["split_sha256"]:
        log.warning("%s does not match the checkpoint's split_sha256; not using the run's files", manifest)
        return RunData(None, [], f"{manifest} sha256 differs from the checkpoint's split_sha256")
    return RunData(root, read_manifest(manifest), f"run split {manifest}")


# (width, height, format, mode): landscape, portrait, square, odd, smaller than any crop, extreme strips.
GENERATED_SHAPES = [
    (160, 120, "JPEG", "RGB"),
    (120, 160, "JPEG", "RGB"),
    (97, 301, "JPEG", "RGB"),
    (301, 97, "PNG", "RGB"),
    (257, 255, "PNG", "RGB"),
    (333, 500, "JPEG", "RGB"),
    (500, 333, "JPEG", "RGB"),
    (37, 53, "PNG", "RGB"),
    (1200, 40, "PNG", "RGB"),
    (40, 900, "JPEG", "RGB"),
    (224, 224, "JPEG", "RGB"),
    (180, 240, "PNG", "RGBA"),
    (211, 149, "PNG", "L"),
    (149, 211, "GIF", "P"),
    (640, 480, "JPEG", "RGB"),
    (479, 641, "JPEG", "RGB"),
]


def _draw(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """A smooth gradient, noise and a few shapes: photo-like enough to exercise resampling."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    base = np.stack([xx / max(w - 1, 1), yy / max(h - 1, 1), (xx + yy) / max(w + h - 2, 1)], -1)
    base = base * rng.uniform(80, 200, 3) + rng.uniform(0, 50, 3) + rng.normal(0, 12, (h, w, 3))
    img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    for _ in range(3):
        x0, y0 = rng.uniform(0, w), rng.uniform(0, h)
        r = max(w, h) * rng.uniform(0.05, 0.3)
        draw.ellipse((x0 - r, y0 - r, x0 + r, y0 + r), fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    return img


def _encode(img: Image.Image, fmt: str, mode: str, rng: np.random.Generator) -> bytes:
    if mode == "RGBA":
        alpha = Image.fromarray(rng.integers(0, 256, (img.height, img.width), dtype=np.uint8), "L")
        img = img.convert("RGBA")
        img.putalpha(alpha)
    elif mode == "P":
        img = img.convert("P", palette=Image.Palette.ADAPTIVE)
    else:
        img = img.convert(mode)
    buf = io.BytesIO()
    img.save(buf, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buf.getvalue()


def generated_samples(n: int, seed: int = 0) -> list[Sample]:
    """``n`` encoded image files cycling through ``GENERATED_SHAPES`` (portrait, odd, grey, RGBA...)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        w, h, fmt, mode = GENERATED_SHAPES[i % len(GENERATED_SHAPES)]
        out.append(Sample(f"generated_{i:03d}_{w}x{h}_{mode}.{fmt.lower()}", _encode(_draw(rng, w, h), fmt, mode, rng)))
    return out


def strip_sample(shorter: int, resized_pixels: int = 13_000_000, seed: int = 0) -> Sample:
    """A strip so elongated that resizing it whole would make ``resized_pixels`` pixels.

    Past about 12 MP the service resizes only the centre window (Pillow's
    ``box``) instead of the whole image; this sample makes parity cover that path.
    """
    short = 2 if shorter < 128 else 20
    long = int(resized_pixels / shorter**2 * short) + 1
    rng = np.random.default_rng(seed)
    img = _draw(rng, long, short)
    return Sample(f"generated_strip_{long}x{short}.png", _encode(img, "PNG", "RGB", rng))
