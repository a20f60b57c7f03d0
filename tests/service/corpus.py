"""A generated corpus of unusual and hostile uploads, each with the status it must get.

Every "ok" image is mostly red so the tiny channel-mean model must answer
"red"; transparent parts are composited on white, which keeps red on top.
Built in memory at test time, in well under a second.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, features

import core.imaging  # noqa: F401 - registers the HEIF opener/saver when pillow-heif is installed

RED = (220, 30, 30)


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[], bytes]
    status: int
    label: str | None = None  # the expected top-1 for 200 answers, where it is known
    skip: str | None = None


def save(img: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **params)
    return buf.getvalue()


def red(size: tuple[int, int] = (64, 48), mode: str = "RGB") -> Image.Image:
    return Image.new("RGB", size, RED).convert(mode)


def red_rgba() -> Image.Image:
    img = Image.new("RGBA", (64, 48), (*RED, 255))
    img.paste((0, 0, 255, 0), (0, 0, 32, 48))  # half fully transparent blue: must vanish into white
    return img


def palette_with_transparency() -> bytes:
    img = red().convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    return save(img, "PNG", transparency=0)


def frames(fmt: str, **params: object) -> bytes:
    first, second = red(), Image.new("RGB", (64, 48), (20, 20, 230))
    return save(first, fmt, save_all=True, append_images=[second], **params)


def png_16bit() -> bytes:
    arr = np.linspace(0, 65535, 64 * 48, dtype=np.uint16).reshape(48, 64)
    return save(Image.fromarray(arr), "PNG")


def tiff_float() -> bytes:
    arr = np.linspace(0, 1, 64 * 48, dtype=np.float32).reshape(48, 64)
    return save(Image.fromarray(arr), "TIFF")


def cmyk_jpeg() -> bytes:
    return save(red().convert("CMYK"), "JPEG", quality=95)


def png_header_bomb(width: int = 30000, height: int = 30000) -> bytes:
    """A PNG whose header claims 900 MP but carries a few bytes of data: refused from the header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def gif_header_bomb() -> bytes:
    data = bytearray(save(red((8, 8)), "GIF"))
    data[6:10] = struct.pack("<HH", 65535, 65535)  # logical screen 65535x65535
    return bytes(data)


def truncated(fmt: str) -> bytes:
    data = save(Image.effect_noise((256, 256), 60).convert("RGB"), fmt)
    return data[: len(data) // 2]


def heic() -> bytes:
    return save(red((64, 48)), "HEIF", quality=90)


def _heic_skip() -> str | None:
    if "HEIF" not in Image.SAVE:
        return "pillow-heif is not installed or cannot encode HEIC here"
    try:
        heic()
    except Exception as exc:  # noqa: BLE001 - any encoder failure means: skip with the reason
        return f"pillow-heif cannot encode HEIC here: {exc}"
    return None


def _avif_skip() -> str | None:
    return None if features.check("avif") else "this Pillow build has no AVIF codec"


SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect/></svg>'
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
HTML = b"<!doctype html><html><body><img src=x onerror=alert(1)></body></html>"


def cases() -> list[Case]:
    return [
        Case("jpeg_baseline", lambda: save(red(), "JPEG"), 200, "red"),
        Case("jpeg_progressive", lambda: save(red((640, 480)), "JPEG", progressive=True), 200, "red"),
        Case("jpeg_cmyk", cmyk_jpeg, 200, "red"),
        Case("jpeg_grayscale", lambda: save(red(mode="L"), "JPEG"), 200),
        Case("png_rgb", lambda: save(red(), "PNG"), 200, "red"),
        Case("png_16bit_gray", png_16bit, 200),
        Case("png_palette", lambda: save(red().convert("P"), "PNG"), 200, "red"),
        Case("png_palette_transparency", palette_with_transparency, 200),
        Case("png_rgba_transparent", lambda: save(red_rgba(), "PNG"), 200, "red"),
        Case("png_la", lambda: save(red(mode="LA"), "PNG"), 200),
        Case("png_1bit", lambda: save(red(mode="1"), "PNG"), 200),
        Case("webp_lossy", lambda: save(red(), "WEBP"), 200, "red"),
        Case("webp_lossless_alpha", lambda: save(red_rgba(), "WEBP", lossless=True), 200, "red"),
        Case("webp_animated_first_frame", lambda: frames("WEBP"), 200, "red"),
        Case("avif", lambda: save(red(), "AVIF"), 200, "red", skip=_avif_skip()),
        Case("gif", lambda: save(red(), "GIF"), 200, "red"),
        Case("gif_animated_first_frame", lambda: frames("GIF"), 200, "red"),
        Case("apng_first_frame", lambda: frames("PNG"), 200, "red"),
        Case("bmp", lambda: save(red(), "BMP"), 200, "red"),
        Case("tiff", lambda: save(red(), "TIFF"), 200, "red"),
        Case("tiff_float", tiff_float, 200),
        Case("tiff_16bit", lambda: save(Image.fromarray(np.full((8, 8), 40000, np.uint16)), "TIFF"), 200),
        Case("ico", lambda: save(red((48, 48)), "ICO"), 200, "red"),
        Case("heic", heic, 200, "red", skip=_heic_skip()),
        Case("one_pixel", lambda: save(red((1, 1)), "PNG"), 200, "red"),
        Case("strip_20000x2", lambda: save(red((20000, 2)), "PNG"), 200, "red"),
        Case("strip_2x20000", lambda: save(red((2, 20000)), "PNG"), 200, "red"),
        Case("empty", lambda: b"", 400),
        Case("truncated_jpeg", lambda: truncated("JPEG"), 400),
        Case("truncated_png", lambda: truncated("PNG"), 400),
        Case("jpeg_magic_then_garbage", lambda: b"\xff\xd8\xff\xe0" + np.random.default_rng(1).bytes(512), 400),
        Case("svg", lambda: SVG, 415),
        Case("pdf", lambda: PDF, 415),
        Case("html", lambda: HTML, 415),
        Case("random_bytes", lambda: np.random.default_rng(0).bytes(4096), 415),
        Case("zip", lambda: b"PK\x03\x04" + b"\0" * 100, 415),
        Case("png_header_bomb_900MP", png_header_bomb, 413),
        Case("png_header_64MP_over_MAX_PIXELS", lambda: png_header_bomb(8000, 8000), 413),
        Case("gif_header_bomb_4GP", gif_header_bomb, 413),
    ]
