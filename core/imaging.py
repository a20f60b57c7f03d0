"""One decode rule and one eval preprocessing, shared by training and serving.

Training, export and the service all call this module, so the network is
trained, evaluated and served on images decoded the same way (same EXIF
handling, same mode conversion, same transparency rule) and on the same eval
tensors. It depends on numpy and Pillow only, never on torch.

The preprocessing reproduces torchvision's eval transform
``Resize(s) -> CenterCrop(h, w) -> ToTensor -> Normalize`` by calling Pillow's
own ``resize`` as torchvision does, so the tensors agree bit for bit in the
usual case (see ``export`` for the measured parity).
"""

from __future__ import annotations

import functools
import io
import math
import struct
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from core.contract import Color, PreprocessSpec
from core.errors import ImageTooLarge, NotAnImage, UndecodableImage

try:  # HEIC/HEIF from phones; optional so training does not need it
    import pillow_heif

    pillow_heif.register_heif_opener()
    HEIF = True
except ImportError:  # pragma: no cover - depends on the environment
    HEIF = False

Image.init()
# The formats decoded and listed in /v1/model, each proven by a test image that decodes
# (tests/service/test_formats.py). Pillow identifies more, but some never decode (MPEG
# only identifies; BUFR, GRIB, HDF5 and WMF need handlers that are not installed), EPS
# would shell out to Ghostscript, PDF/PSD are documents, and the rest are no camera's
# output: every other format is refused as "not an image" before any plugin parses it.
_DECODED_FORMATS = ("JPEG", "PNG", "WEBP", "HEIF", "AVIF", "GIF", "BMP", "TIFF", "ICO", "JPEG2000", "PPM", "QOI")
ALLOWED_FORMATS = tuple(f for f in _DECODED_FORMATS if f in Image.OPEN)  # AVIF/HEIF where the plugin is present

# Past this many resized pixels (about what a decoded 12 MP photo holds), resize
# only the centre window (Pillow's ``box``) instead of the whole image: a 20000x2
# strip would otherwise be scaled to 2,560,000x256 just to keep 224x224 of it.
# The window path differs from the full resize by at most one 8-bit level on
# some pixels (float box positions round differently), so it is kept for shapes
# that need it: aspect ratios past about 180:1 at a 256-pixel short side.
_EXACT_RESIZE_BUDGET = 12_000_000


# What Pillow's plugins and pillow-heif raise on corrupt input (found by fuzzing
# mutated files: RuntimeError from libheif/libavif, TypeError, IndexError...).
_DECODER_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    RuntimeError,
    TypeError,
    IndexError,
    KeyError,
    ZeroDivisionError,
    AttributeError,
)


@dataclass(frozen=True)
class DecodeOptions:
    max_pixels: int = 40_000_000
    # JPEG only: let the decoder downscale by 1/2..1/8 towards this shorter side.
    # Faster on big photos but not bit-exact, hence off by default.
    draft_shorter: int | None = None


def open_image(data: bytes, options: DecodeOptions = DecodeOptions()) -> Image.Image:
    """Decode bytes into a fully loaded, upright Pillow image (first frame).

    The format comes from the bytes, never from a file name or declared type.
    The pixel limit is checked from the header, before any pixel is decoded.
    """
    return load_opened(open_header(data, options), options)


def open_header(data: bytes, options: DecodeOptions = DecodeOptions()) -> Image.Image:
    """Read only the header: format, mode and size are known, no pixel is decoded yet.

    The caller can size the decode (``decode_cost``) before paying for it with ``load_opened``.
    """
    if not data:
        raise UndecodableImage("the image is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(f"image has too many pixels: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise NotAnImage(
            "the data is not an image format this service reads "
            "(send JPEG, PNG, WebP, GIF, BMP, TIFF, HEIC, AVIF, ICO...)"
        ) from exc
    except _DECODER_ERRORS as exc:
        raise UndecodableImage(f"the image header is corrupt: {exc}") from exc
    _check_size(img.size, options.max_pixels)
    return img


def load_opened(img: Image.Image, options: DecodeOptions = DecodeOptions()) -> Image.Image:
    """Decode the pixels of an image from ``open_header``: loaded and upright."""
    return _load(img, options)


def _check_size(size: tuple[int, int], max_pixels: int) -> None:
    w, h = size
    if w <= 0 or h <= 0:
        raise UndecodableImage(f"the image has no pixels ({w}x{h})")
    if w * h > max_pixels:
        raise ImageTooLarge(
            f"the image is {w}x{h} = {w * h:,} pixels; the limit is {max_pixels:,}. Send a smaller image."
        )


def _load(img: Image.Image, options: DecodeOptions) -> Image.Image:
    try:
        if getattr(img, "n_frames", 1) > 1:
            img.seek(0)
        if options.draft_shorter and img.format == "JPEG":
            img.draft(img.mode, _draft_target(img.size, options.draft_shorter))
        img.load()
        # in_place: no copy of the whole decoded image when it is already upright (the usual case)
        ImageOps.exif_transpose(img, in_place=True)
        return img
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(f"image has too many pixels: {exc}") from exc
    except _DECODER_ERRORS as exc:
        raise UndecodableImage(f"the image data is truncated or corrupt: {exc}") from exc


# Peak bytes per source pixel that decoding and converting to RGB/L hold at once, by decoded
# mode (Pillow keeps RGB in 4 bytes a pixel). Measured with VmHWM on 6 MP images (Pillow 13),
# then rounded up: RGB JPEG/PNG 4.5, RGBA 16 (composite on white), I;16 31, F 33, CMYK 8.
_PEAK_BYTES_PER_PIXEL = {"1": 6, "L": 6, "P": 6, "RGB": 5, "CMYK": 9, "YCbCr": 9, "LAB": 9, "HSV": 9}
_ALPHA_BYTES_PER_PIXEL, _WIDE_BYTES_PER_PIXEL = 17, 35
# Decoders that hold their own full-size buffer beside Pillow's (measured: WebP RGB 16.5, HEIF 7.7, AVIF 9.0).
_FORMAT_EXTRA = {"WEBP": 13, "HEIF": 5, "AVIF": 5}
_ROTATED_EXTRA = 4  # EXIF orientation other than 1: one more full-size copy while transposing


def decode_cost(img: Image.Image, spec: PreprocessSpec | None = None) -> int:
    """Upper bound of the bytes decoding + preprocessing an opened (not loaded) image will hold at once.

    The service reserves this much of its memory budget before decoding, so a
    mix of huge images cannot push the process past its memory limit.
    """
    w, h = img.size
    mode = img.mode
    if mode in ("RGBA", "LA", "La", "RGBa", "PA") or (mode == "P" and "transparency" in img.info):
        per_pixel = _ALPHA_BYTES_PER_PIXEL
    elif mode in ("I", "F") or mode.startswith("I;16"):
        per_pixel = _WIDE_BYTES_PER_PIXEL
    else:
        per_pixel = _PEAK_BYTES_PER_PIXEL.get(mode, _ALPHA_BYTES_PER_PIXEL)
    per_pixel += _FORMAT_EXTRA.get(img.format or "", 0)
    if _orientation(img) not in (None, 1):
        per_pixel += _ROTATED_EXTRA
    resized = 0
    if spec is not None:
        new_w, new_h = resized_size((w, h), spec.resize_shorter)
        resized = min(new_w * new_h, _EXACT_RESIZE_BUDGET) * 4 * 2  # Pillow's two resize passes
    return w * h * per_pixel + resized + (1 << 20)


def _orientation(img: Image.Image) -> int | None:
    """The EXIF orientation from the header alone (``getexif`` would decode a whole PNG to look for it)."""
    try:
        raw = img.info.get("exif")
        if raw is None:
            tags = getattr(img, "tag_v2", None)  # TIFF keeps it among its own tags
            return None if tags is None else tags.get(0x0112)
        exif = Image.Exif()
        exif.load(raw)
        return exif.get(0x0112)
    except _DECODER_ERRORS:
        return None


def _draft_target(size: tuple[int, int], shorter: int) -> tuple[int, int]:
    w, h = size
    k = shorter / min(w, h)
    return max(1, math.ceil(w * k)), max(1, math.ceil(h * k))


def to_color(img: Image.Image, color: Color) -> Image.Image:
    """Convert any Pillow mode to ``RGB`` or ``L``; transparency is composited on white.

    16-bit and 32-bit integer images are scaled to 8 bits (not clipped), float
    images are taken as 0..1 when their maximum is at most 1, else as 0..255.
    """
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        img = _wide_to_8bit(img)
    elif mode == "1":
        img = img.convert("L")
    elif mode == "P" or mode == "PA":
        img = img.convert("RGBA" if _has_alpha(img) else "RGB")
    elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        img = img.convert("RGB")
    if img.mode in ("RGBA", "LA", "La", "RGBa"):
        img = _composite_on_white(img)
    if img.mode != color:
        img = img.convert(color)
    return img


def _has_alpha(img: Image.Image) -> bool:
    return img.mode == "PA" or "transparency" in img.info


def _composite_on_white(img: Image.Image) -> Image.Image:
    rgba = img.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    background.alpha_composite(rgba)
    return background.convert("RGB")


def _wide_to_8bit(img: Image.Image) -> Image.Image:
    arr = np.asarray(img, dtype=np.float64)
    if img.mode == "F":
        peak = float(np.nanmax(arr)) if arr.size else 0.0
        arr = arr * 255.0 if peak <= 1.0 else arr
    elif img.mode.startswith("I;16") or float(arr.max(initial=0)) > 255:
        arr = arr / 257.0
    arr = np.nan_to_num(arr, nan=0.0, posinf=255.0, neginf=0.0)
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), mode="L")


def load_image(data: bytes, color: Color, options: DecodeOptions = DecodeOptions()) -> Image.Image:
    """The shared decode rule: bytes -> upright image in the model's color mode."""
    return to_color(open_image(data, options), color)


def resized_size(size: tuple[int, int], shorter: int) -> tuple[int, int]:
    """torchvision ``Resize(int)``: short side -> ``shorter``, long side truncated."""
    w, h = size
    if w <= h:
        return shorter, int(shorter * h / w)
    return int(shorter * w / h), shorter


def resize_and_crop(img: Image.Image, spec: PreprocessSpec) -> Image.Image:
    """``Resize(spec.resize_shorter)`` then ``CenterCrop(spec.crop)``, as torchvision does."""
    crop_h, crop_w = spec.crop
    new_w, new_h = resized_size(img.size, spec.resize_shorter)
    if new_w * new_h > _EXACT_RESIZE_BUDGET:
        return _resize_centre_window(img, (new_w, new_h), (crop_h, crop_w))
    if (new_w, new_h) != img.size:
        img = img.resize((new_w, new_h), Image.Resampling.BILINEAR)
    return center_crop(img, (crop_h, crop_w))


def _resize_centre_window(img: Image.Image, new_size: tuple[int, int], crop: tuple[int, int]) -> Image.Image:
    """Resize only the source region that lands in the centre crop (same filter positions)."""
    (new_w, new_h), (crop_h, crop_w) = new_size, crop
    w, h = img.size
    top, left = int(round((new_h - crop_h) / 2.0)), int(round((new_w - crop_w) / 2.0))
    sx, sy = w / new_w, h / new_h
    box = (left * sx, top * sy, (left + crop_w) * sx, (top + crop_h) * sy)
    return img.resize((crop_w, crop_h), Image.Resampling.BILINEAR, box=box)


def center_crop(img: Image.Image, crop: tuple[int, int]) -> Image.Image:
    """torchvision ``CenterCrop``: pad with zeros when too small, offsets rounded half to even."""
    crop_h, crop_w = crop
    w, h = img.size
    if crop_w > w or crop_h > h:
        padded = Image.new(img.mode, (max(w, crop_w), max(h, crop_h)), 0)
        padded.paste(img, ((crop_w - w) // 2 if crop_w > w else 0, (crop_h - h) // 2 if crop_h > h else 0))
        img, (w, h) = padded, padded.size
        if (w, h) == (crop_w, crop_h):
            return img
    top, left = int(round((h - crop_h) / 2.0)), int(round((w - crop_w) / 2.0))
    return img.crop((left, top, left + crop_w, top + crop_h))


@functools.lru_cache(maxsize=16)
def _normalize_table(scale: float, mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """(C, 256) float32: every 8-bit value already scaled and normalised, per channel.

    Computed with the same float32 operations as the elementwise formula, so a
    table lookup gives bit-identical results at a fraction of the cost.
    """
    levels = np.arange(256, dtype=np.float32) / np.float32(1.0 / scale)
    mean_ = np.asarray(mean, dtype=np.float32)[:, None]
    std_ = np.asarray(std, dtype=np.float32)[:, None]
    return np.ascontiguousarray((levels[None, :] - mean_) / std_)


def to_tensor(img: Image.Image, spec: PreprocessSpec) -> np.ndarray:
    """8-bit image -> float32 (C, H, W): ``x / 255``, then ``(x - mean) / std`` per channel."""
    arr = np.asarray(img)
    if arr.ndim == 2:
        arr = arr[:, :, None]  # (H, W) -> (H, W, 1)
    if arr.dtype != np.uint8:  # not reached for RGB/L images; kept for safety
        arr32 = arr.astype(np.float32) / np.float32(1.0 / spec.scale)
        out = (arr32 - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
        return np.ascontiguousarray(out.transpose(2, 0, 1))
    table = _normalize_table(spec.scale, tuple(spec.mean), tuple(spec.std))
    chw = arr.transpose(2, 0, 1)  # (H, W, C) -> (C, H, W)
    return np.stack([table[c][chw[c]] for c in range(chw.shape[0])])


def preprocess(img: Image.Image, spec: PreprocessSpec) -> np.ndarray:
    """A decoded image in the model's color -> the model's (C, H, W) float32 input."""
    return to_tensor(resize_and_crop(img, spec), spec)


def image_tensor(
    data: bytes, color: Color, spec: PreprocessSpec, options: DecodeOptions = DecodeOptions()
) -> np.ndarray:
    """Encoded bytes -> the model's (C, H, W) float32 input: the whole rule in one call."""
    return preprocess(load_image(data, color, options), spec)
