"""An offline stand-in for Animals-10: same folder layout, learnable in seconds.

Each class has its own hue and shape, drawn with noise, random size and aspect
ratio, so a small CNN separates the classes quickly while the data still
exercises decoding, resizing and cropping like real photos.
"""

from __future__ import annotations

import colorsys
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


def make_synthetic(root: Path, per_class: int = 30, seed: int = 0, max_side: int = 160) -> Path:
    """Write ``root/raw-img/<italian name>/*.jpeg``; return the data root. Idempotent."""
    root = Path(root)
    marker = root / ".complete"
    if marker.exists():
        return root
    rng = np.random.default_rng(seed)
    for cls, folder in enumerate(sorted(ANIMALS10)):
        out = root / "raw-img" / folder
        out.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            size = (int(rng.integers(max_side // 2, max_side)), int(rng.integers(max_side // 2, max_side)))
            _draw(cls, rng, size).save(out / f"synthetic_{i:04d}.jpeg", quality=90)
    marker.write_text(f"per_class={per_class} seed={seed}\n")
    return root
