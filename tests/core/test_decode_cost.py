"""``decode_cost`` is an upper bound of what decoding really holds, measured as peak RSS (VmHWM)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
W, H = 1800, 1200

# Runs in a fresh interpreter that never held a large buffer (freed memory stays resident, so it
# would hide the decode): reset the peak RSS (/proc/self/clear_refs), decode, and compare the
# peak with the estimate made from the header alone.
PROBE = r"""
import io, json, sys
from pathlib import Path
from PIL import Image
from core.contract import PreprocessSpec
from core.imaging import DecodeOptions, decode_cost, load_image, open_header, preprocess

spec = PreprocessSpec(256, (224, 224), (0.5,) * 3, (0.5,) * 3)
small = io.BytesIO()
Image.new("RGB", (64, 48), "red").save(small, "PNG")
preprocess(load_image(small.getvalue(), "RGB"), spec)  # imports and first-call allocations
data = Path(sys.argv[1]).read_bytes()
estimate = decode_cost(open_header(data, DecodeOptions()), spec)

def hwm_kb():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM"))

with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # the peak restarts from the current RSS
start = hwm_kb()
tensor = preprocess(load_image(data, "RGB"), spec)
print(json.dumps({"peak": (hwm_kb() - start) * 1024, "estimate": estimate}))
"""


def encode(kind: str) -> bytes:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    rgba = rng.integers(0, 256, (H, W, 4), dtype=np.uint8)
    img, fmt, params = {
        "rgb_jpeg": (Image.fromarray(rgb), "JPEG", {"quality": 80}),
        "rotated_jpeg": (Image.fromarray(rgb), "JPEG", {"quality": 80}),
        "rgba_png": (Image.fromarray(rgba), "PNG", {"compress_level": 1}),
        "rgba_webp": (Image.fromarray(rgba), "WEBP", {"quality": 50}),
        "i16_png": (Image.fromarray(rng.integers(0, 65535, (H, W), dtype=np.uint16)), "PNG", {"compress_level": 1}),
        "float_tiff": (Image.fromarray(rng.random((H, W), dtype=np.float32)), "TIFF", {}),
    }[kind]
    if kind == "rotated_jpeg":
        exif = img.getexif()
        exif[0x0112] = 6
        params["exif"] = exif
    buf = io.BytesIO()
    img.save(buf, fmt, **params)
    return buf.getvalue()


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc to reset the peak RSS")
@pytest.mark.parametrize("kind", ["rgb_jpeg", "rotated_jpeg", "rgba_png", "rgba_webp", "i16_png", "float_tiff"])
def test_decode_cost_bounds_the_measured_peak(kind: str, tmp_path: Path) -> None:
    (tmp_path / kind).write_bytes(encode(kind))
    cmd = [sys.executable, "-c", PROBE, str(tmp_path / kind)]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    r = json.loads(out.stdout)
    assert r["peak"] > 3 * W * H, r  # the probe really saw the decode (RGB is 4 bytes a pixel in Pillow)
    assert r["estimate"] >= r["peak"], f"estimate {r['estimate']:,} < measured peak {r['peak']:,}"
    assert r["estimate"] <= 2 * r["peak"] + (4 << 20), f"estimate {r['estimate']:,} is far above {r['peak']:,}"


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "TIFF"])
def test_decode_cost_reads_the_orientation_without_decoding(fmt: str) -> None:
    """Pillow's ``getexif`` decodes a whole PNG to look for EXIF; the estimate must not."""
    from core.imaging import DecodeOptions, decode_cost, open_header

    img = Image.new("RGBA" if fmt in ("PNG", "WEBP") else "RGB", (400, 300))
    exif = img.getexif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    img.save(buf, fmt, exif=exif)
    opened = open_header(buf.getvalue(), DecodeOptions())
    upright = io.BytesIO()
    img.save(upright, fmt)
    assert decode_cost(opened) > decode_cost(open_header(upright.getvalue(), DecodeOptions()))  # rotated costs more
    if fmt != "WEBP":  # WebP keeps no tile list either way
        assert opened.tile, "decode_cost loaded the pixels"
