"""The GPU input path's first half: workers read bytes, the device decodes JPEGs in batches.

A DataLoader worker reads a training file, looks at its JPEG header (Pillow
parses the markers without decoding), and draws the sample's augmentation
parameters (``train/augment.py``). Baseline YCbCr JPEGs go to the device as
bytes and are decoded there in one call per batch (``torchvision.io.decode_jpeg``
with a list: nvJPEG on CUDA, libjpeg-turbo on a CPU). Every other file takes
the project's one decode rule (``core.imaging.load_image``) in the worker, so
it is decoded exactly as the CPU path and the service decode it: PNG and other
formats, grayscale and CMYK JPEGs, JPEGs stored as RGB rather than YCbCr,
JPEGs whose EXIF orientation the rule would apply (torchvision applies EXIF
orientation on the CPU only), and progressive JPEGs (torchvision decodes those
one at a time with host-side Huffman decoding and a stream sync each, slower
than the workers in parallel). A JPEG the device decoder still rejects is
decoded by the same rule, one file at a time. Each route is counted
(``DecodeCounts``).
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torchvision.io import ImageReadMode, decode_jpeg

from core.imaging import DecodeOptions, load_image
from train.augment import PARAMS, Recipe, sample_params, sample_rng
from train.data import MAX_PIXELS, Entry

DEVICE = "device"  # decoded by the device decoder; every other route is a reason for the CPU rule
REJECTED = "device-rejected"
ROW = (*PARAMS, "image_height", "image_width")  # one sample's row of RawBatch.params
ROUTES = (DEVICE, "not-jpeg", "grayscale", "cmyk", "rgb-jpeg", "exif-orientation", "progressive", REJECTED)
_EXIF_ORIENTATION = 0x0112
_RGB_COMPONENT_IDS = [ord("R"), ord("G"), ord("B")]


def device_route(raw: bytes) -> tuple[str, tuple[int, int] | None]:
    """(route, (width, height) from the header): ``"device"``, or why the CPU rule decodes this file."""
    try:
        with Image.open(io.BytesIO(raw), formats=("JPEG",)) as img:
            mode, size = img.mode, img.size
            adobe_rgb = img.info.get("adobe_transform") == 0 and "adobe" in img.info
            ids = [layer[0] for layer in getattr(img, "layer", [])]
            orientation = img.getexif().get(_EXIF_ORIENTATION, 1) if "exif" in img.info else 1
            progressive = bool(img.info.get("progressive"))
    except Exception:  # not a JPEG, or a header Pillow cannot parse: the CPU rule decides
        return "not-jpeg", None
    if mode == "L":
        return "grayscale", size
    if mode == "CMYK":
        return "cmyk", size
    if adobe_rgb or ids == _RGB_COMPONENT_IDS:
        return "rgb-jpeg", size
    if orientation not in (0, 1):
        return "exif-orientation", size
    if progressive:
        return "progressive", size
    return DEVICE, size


def decode_on_cpu(raw: bytes) -> torch.Tensor:
    """The project's decode rule: (H, W, 3) uint8, upright, RGB."""
    img = load_image(raw, "RGB", DecodeOptions(max_pixels=MAX_PIXELS))
    return torch.from_numpy(np.array(img, dtype=np.uint8, copy=True))


@dataclass
class RawSample:
    data: bytes | torch.Tensor  # JPEG bytes (route "device") or (H, W, 3) uint8 decoded by the rule
    route: str
    params: list[float]  # ROW
    label: int


class RawImages:
    """Training files as bytes plus their augmentation parameters; indexed by (epoch, index)."""

    def __init__(self, root: Path, entries: list[Entry], recipe: Recipe, seed: int) -> None:
        self.root, self.entries, self.recipe, self.seed = root, entries, recipe, seed

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, key: tuple[int, int]) -> RawSample:
        epoch, index = key
        entry = self.entries[index]
        raw = (self.root / entry.file).read_bytes()
        route, size = device_route(raw)
        data: bytes | torch.Tensor = raw
        if route != DEVICE:
            data = decode_on_cpu(raw)
            size = (data.shape[1], data.shape[0])
        assert size is not None
        params = sample_params(sample_rng(self.seed, epoch, index), size, self.recipe)
        return RawSample(data, route, [*params.row(), size[1], size[0]], entry.label)


@dataclass
class RawBatch:
    """A batch as the workers hand it over: JPEG bytes in one buffer, rule-decoded images, parameters."""

    encoded: torch.Tensor  # uint8, the device-route files' bytes back to back
    lengths: list[int]  # byte length of each device-route file, in batch order
    decoded: list[torch.Tensor]  # (H, W, 3) uint8 of the other files, in batch order
    routes: list[str]  # per sample
    params: torch.Tensor  # (B, 8) float32, ROW
    labels: torch.Tensor  # (B,) int64

    def pin_memory(self) -> RawBatch:
        """Called by the DataLoader's pinning thread: page-locked memory makes the copies asynchronous."""
        self.decoded = [d.pin_memory() for d in self.decoded]
        self.params, self.labels = self.params.pin_memory(), self.labels.pin_memory()
        return self

    def jpegs(self) -> list[torch.Tensor]:
        offsets = np.cumsum([0, *self.lengths])
        return [self.encoded[offsets[i] : offsets[i + 1]] for i in range(len(self.lengths))]


def collate_raw(samples: Sequence[RawSample]) -> RawBatch:
    """One buffer for all JPEG bytes (one shared-memory transfer from the worker instead of one per file)."""
    jpegs = [s.data for s in samples if isinstance(s.data, bytes)]
    encoded = bytearray(b"".join(jpegs))
    return RawBatch(
        encoded=torch.frombuffer(encoded, dtype=torch.uint8) if encoded else torch.empty(0, dtype=torch.uint8),
        lengths=[len(j) for j in jpegs],
        decoded=[s.data for s in samples if isinstance(s.data, torch.Tensor)],
        routes=[s.route for s in samples],
        params=torch.tensor([s.params for s in samples], dtype=torch.float32),
        labels=torch.tensor([s.label for s in samples], dtype=torch.int64),
    )


@dataclass
class DecodeCounts:
    """How many training images each route decoded, over the whole run (for the report)."""

    counts: Counter = field(default_factory=Counter)

    def add(self, routes: list[str]) -> None:
        self.counts.update(routes)

    def as_tensor(self) -> torch.Tensor:
        return torch.tensor([self.counts.get(r, 0) for r in ROUTES], dtype=torch.int64)

    @staticmethod
    def from_tensor(t: torch.Tensor) -> dict[str, int]:
        return {r: int(n) for r, n in zip(ROUTES, t.tolist(), strict=True)}


Decoder = Callable[..., Any]  # torchvision.io.decode_jpeg's signature


class DeviceDecoder:
    """One batched decode call for a batch's JPEGs; the rule for what the decoder rejects. Never raises on a file."""

    def __init__(self, device: torch.device, decode: Decoder = decode_jpeg) -> None:
        self.device, self.decode = device, decode
        self.counts = DecodeCounts()

    def __call__(self, batch: RawBatch) -> list[torch.Tensor]:
        """(3, H, W) uint8 images on the device, in batch order."""
        jpegs = batch.jpegs()
        from_device, files = iter(self._decode_all(jpegs) if jpegs else []), iter(jpegs)
        from_rule = iter(batch.decoded)
        images, routes = [], []
        for route in batch.routes:
            if route == DEVICE:
                image, jpeg = next(from_device), next(files)
                if image is None:
                    image, route = self._rule(jpeg), REJECTED
            else:
                image = next(from_rule).to(self.device, non_blocking=True).permute(2, 0, 1)
            images.append(image)
            routes.append(route)
        self.counts.add(routes)
        return images

    def _decode_all(self, jpegs: list[torch.Tensor]) -> list[torch.Tensor | None]:
        """The whole list in one call; if that fails, file by file, None for each file the decoder rejects."""
        if self.device.type == "cuda":
            # torchvision allocates the outputs on this thread's stream but writes them from its own stream,
            # which does not wait for ours: let our queued kernels finish before their freed memory is reused.
            torch.cuda.current_stream(self.device).synchronize()
        try:
            return list(self.decode(jpegs, mode=ImageReadMode.RGB, device=self.device))
        except Exception:  # one bad stream fails torchvision's whole call
            return [self._decode_one(j) for j in jpegs]

    def _decode_one(self, jpeg: torch.Tensor) -> torch.Tensor | None:
        try:
            return self.decode([jpeg], mode=ImageReadMode.RGB, device=self.device)[0]
        except Exception:
            return None

    def _rule(self, jpeg: torch.Tensor) -> torch.Tensor:
        return decode_on_cpu(jpeg.numpy().tobytes()).to(self.device).permute(2, 0, 1)
