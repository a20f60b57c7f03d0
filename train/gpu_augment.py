"""The GPU input path's second half: the recipe's augmentation, batched on the device.

Input: decoded (3, H, W) uint8 images of different sizes and one parameter row
per sample (``train/augment.py``, the same draw the CPU path would apply).
Output: the normalised (B, 3, h, w) float32 batch, channels_last on request.

1. The images are pasted into a zero canvas of the batch's largest size.
2. Rotation: one ``grid_sample`` (nearest, zero fill), about each image's own
   centre with Pillow's conventions, as ``RandomRotation`` (NEAREST) does. The
   grid reads clamped output coordinates, so beyond its own size each image is
   edge-replicated instead of meeting its neighbours' padding.
3. Crop and resize: ``roi_align`` cuts every sample's box and resizes it to the
   crop size in one call; it averages ``ceil(box / out)`` bilinear samples per
   output pixel in each direction, so a downscale is antialiased as Pillow's
   resize is (close to it, not bit-identical).
4. Flip, normalisation, memory format.

A batch of very large photos is processed in chunks so that the canvas stays
within ``PIXEL_BUDGET`` pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn import functional as nnf
from torchvision.ops import roi_align

from train.augment import Recipe

PIXEL_BUDGET = 1 << 25  # canvas pixels per chunk: ~1 GiB of float32 canvas, rotated copy and grid


def chunks(shapes: Sequence[tuple[int, int]], budget: int = PIXEL_BUDGET) -> list[range]:
    """Consecutive runs of samples whose padded canvas (n x max H x max W) fits the budget."""
    out, start, max_h, max_w = [], 0, 0, 0
    for i, (h, w) in enumerate(shapes):
        grown_h, grown_w = max(max_h, h), max(max_w, w)
        if i > start and (i - start + 1) * grown_h * grown_w > budget:
            out.append(range(start, i))
            start, grown_h, grown_w = i, h, w
        max_h, max_w = grown_h, grown_w
    out.append(range(start, len(shapes)))
    return out


def _canvas(images: Sequence[torch.Tensor]) -> torch.Tensor:
    """(n, 3, max H, max W) float32, each image top-left, zeros elsewhere."""
    h = max(im.shape[1] for im in images)
    w = max(im.shape[2] for im in images)
    canvas = torch.zeros((len(images), 3, h, w), dtype=torch.float32, device=images[0].device)
    for i, im in enumerate(images):
        canvas[i, :, : im.shape[1], : im.shape[2]].copy_(im)
    return canvas


def rotate(canvas: torch.Tensor, angles: torch.Tensor, heights: torch.Tensor, widths: torch.Tensor) -> torch.Tensor:
    """Rotate each image counter-clockwise by ``angles`` degrees about its centre, as Pillow's ``rotate``.

    Pillow maps an output pixel centre p to the input point M (p - c) + c,
    with c = (w / 2, h / 2) and M the rotation by -angle; outside the image it
    fills 0. Canvas pixels beyond an image's own size repeat its last row or
    column of output (clamped coordinates).
    """
    n, _, hc, wc = canvas.shape
    dev = canvas.device
    theta = torch.deg2rad(angles).view(n, 1, 1)
    cos, sin = torch.cos(theta), torch.sin(theta)
    hh, ww = heights.view(n, 1, 1), widths.view(n, 1, 1)
    ys = torch.arange(hc, device=dev, dtype=torch.float32).view(1, hc, 1)
    xs = torch.arange(wc, device=dev, dtype=torch.float32).view(1, 1, wc)
    dx = torch.minimum(xs, ww - 1) + 0.5 - ww / 2  # (n, 1, wc): output pixel centre, relative to the centre
    dy = torch.minimum(ys, hh - 1) + 0.5 - hh / 2  # (n, hc, 1)
    x_in = cos * dx - sin * dy + ww / 2  # (n, hc, wc), continuous pixel coordinates
    y_in = sin * dx + cos * dy + hh / 2
    grid = torch.stack((2 * x_in / wc - 1, 2 * y_in / hc - 1), dim=-1)  # align_corners=False convention
    return nnf.grid_sample(canvas, grid, mode="nearest", padding_mode="zeros", align_corners=False)


def crop_resize(canvas: torch.Tensor, params: torch.Tensor, out: tuple[int, int]) -> torch.Tensor:
    """Each sample's (top, left, height, width) box, resized to ``out``: one ``roi_align`` call."""
    top, left, h, w = params[:, 1], params[:, 2], params[:, 3], params[:, 4]
    index = torch.arange(len(params), device=params.device, dtype=params.dtype)
    boxes = torch.stack((index, left, top, left + w, top + h), dim=1)  # (n, 5): batch index, x1, y1, x2, y2
    return roi_align(canvas, boxes, out, spatial_scale=1.0, sampling_ratio=-1, aligned=True)


class BatchAugment:
    """Decoded images + parameter rows -> the normalised training batch, on their device."""

    def __init__(
        self,
        recipe: Recipe,
        mean: Sequence[float],
        std: Sequence[float],
        channels_last: bool = False,
        budget: int = PIXEL_BUDGET,
    ) -> None:
        self.recipe, self.channels_last, self.budget = recipe, channels_last, budget
        # x / 255, then (x - mean) / std, folded into one multiply-add per channel
        self.scale = [1.0 / (255.0 * s) for s in std]
        self.shift = [m / s for m, s in zip(mean, std, strict=True)]
        self._cache: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    def __call__(self, images: Sequence[torch.Tensor], rows: torch.Tensor) -> torch.Tensor:
        """``images``: (3, H, W) uint8; ``rows``: (B, 8) float32 of ``gpu_decode.ROW``, on the images' device."""
        parts = []
        for part in chunks([(im.shape[1], im.shape[2]) for im in images], self.budget):
            sub = rows[part.start : part.stop]
            canvas = rotate(_canvas([images[i] for i in part]), sub[:, 0], sub[:, 6], sub[:, 7])
            parts.append(crop_resize(canvas, sub, self.recipe.crop))
        x = torch.cat(parts) if len(parts) > 1 else parts[0]
        x = torch.where(rows[:, 5].view(-1, 1, 1, 1) > 0.5, x.flip(3), x)
        scale, shift = self._affine(x.device)
        x = torch.addcmul(-shift, x, scale)  # x * scale - shift: (x / 255 - mean) / std
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def _affine(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(1, C, 1, 1) scale and shift, copied to the device once (a copy from a list would wait on the GPU)."""
        if device not in self._cache:
            pair = torch.tensor([self.scale, self.shift], dtype=torch.float32).view(2, 1, -1, 1, 1)
            self._cache[device] = (pair[0].to(device), pair[1].to(device))
        return self._cache[device]
