"""An offline stand-in for Animals-10: same folder layout, learnable in seconds.

Each class has its own hue and shape, drawn with noise, random size and aspect
ratio, so a small CNN separates the classes quickly while the data still
exercises decoding, resizing and cropping like real photos.
"""

from __future__ import annotations

import colorsys
import shutil
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from train.labels import ANIMALS10


def _draw(cls: int, rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    w, h = size
    hue = cls / len(ANIMALS10)
    r, g, b = (int(255 * c) for c in colorsys.hsv_to_rgb(hue, 0.85, 0.9))
    noise = rng.normal(0, 18, (h, w, 3))
    base = np.clip(np.full((h, w, 3), (r, g, b), dtype=np.float64) * 0.35 + 90 + noise, 0, 255)
    img = Image.fromarray(base.astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    cx, cy = w * rng.uniform(0.35, 0.65), h * rng.uniform(0.35, 0.65)
    rad = min(w, h) * rng.uniform(0.25, 0.4)
    box = (cx - rad, cy - rad, cx + rad, cy + rad)
    sides = 3 + cls % 5
    if cls % 2:
        draw.ellipse(box, fill=(r, g, b))
    else:
        draw.regular_polygon((cx, cy, rad), sides, rotation=float(rng.uniform(0, 360)), fill=(r, g, b))
    return img


def parse_size(text: str) -> tuple[int, int]:
    """``"400x300"`` -> (400, 300): ``--synthetic-size``."""
    w, sep, h = text.lower().partition("x")
    if not (sep and w.strip().isdigit() and h.strip().isdigit() and int(w) >= 8 and int(h) >= 8):
        raise ValueError(f"--synthetic-size {text}: expected WIDTHxHEIGHT of at least 8x8 pixels, e.g. 400x300")
    return int(w), int(h)


def _draw_size(rng: np.random.Generator, max_side: int, size: tuple[int, int] | None) -> tuple[int, int]:
    """Sides in [max_side / 2, max_side), or within +-10% of ``size`` (photos vary around a typical size)."""
    if size is None:
        return int(rng.integers(max_side // 2, max_side)), int(rng.integers(max_side // 2, max_side))
    return tuple(int(rng.integers(round(s * 0.9), round(s * 1.1) + 1)) for s in size)  # type: ignore[return-value]


def make_synthetic(
    root: Path, per_class: int = 30, seed: int = 0, max_side: int = 160, size: tuple[int, int] | None = None
) -> Path:
    """Write ``root/raw-img/<italian name>/*.jpeg``; return the data root.

    Idempotent: a folder written with the same arguments is reused; other
    arguments (another ``size`` or count) rewrite it.
    """
    root = Path(root)
    marker = root / ".complete"
    stamp = f"per_class={per_class} seed={seed}" + (f" size={size[0]}x{size[1]}" if size else "") + "\n"
    if marker.exists():
        if marker.read_text() == stamp:
            return root
        shutil.rmtree(root / "raw-img", ignore_errors=True)
        marker.unlink()
    rng = np.random.default_rng(seed)
    for cls, folder in enumerate(sorted(ANIMALS10)):
        out = root / "raw-img" / folder
        out.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            _draw(cls, rng, _draw_size(rng, max_side, size)).save(out / f"synthetic_{i:04d}.jpeg", quality=90)
    marker.write_text(stamp)
    return root
