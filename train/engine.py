"""One epoch of training, one pass of evaluation; sums reduced across processes.

Each process counts (loss sum, correct, seen) and the confusion matrix over its
own shard; summing those across ranks gives exactly the one-process numbers
when the shards do not overlap (evaluation shards are unpadded, see run.py).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch import nn
from tqdm import tqdm

from train.distributed import Dist, sum_across


@dataclass
class EpochStats:
    loss: float
    accuracy: float
    n: int
    seconds: float = 0.0

    @property
    def images_per_s(self) -> float:
        return self.n / max(self.seconds, 1e-9)


@dataclass(frozen=True)
class Precision:
    """How batches are fed on this device: AMP dtype (None: FP32) and memory format."""

    device: torch.device
    amp_dtype: torch.dtype | None = None
    channels_last: bool = False

    def autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def batch(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.to(self.device, non_blocking=True)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y.to(self.device, non_blocking=True)


def pick_precision(device: torch.device, amp: str, channels_last: bool) -> Precision:
    """AMP and channels_last on CUDA only: on a CPU they cost more than they save."""
    if device.type != "cuda":
        return Precision(device)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "off": None}.get(amp)
    if amp == "auto":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return Precision(device, dtype, channels_last)


def _stats(sums: torch.Tensor, seconds: float) -> EpochStats:
    loss, correct, n = sums.tolist()
    n = int(n)
    return EpochStats(loss / max(n, 1), correct / max(n, 1), n, seconds)


def train_one_epoch(
    model: nn.Module,
    loader,
    optimizer,
    prec: Precision,
    info: Dist,
    scaler=None,
    desc: str = "train",
    show_progress: bool = True,
) -> EpochStats:
    """One pass over this rank's shard; ``scaler`` is a GradScaler for FP16, else None."""
    model.train()
    loss_fn = nn.CrossEntropyLoss()
    sums = torch.zeros(3, dtype=torch.float64, device=prec.device)  # loss sum, correct, seen
    for x, y in tqdm(loader, desc=desc, leave=False, disable=not show_progress, unit="batch"):
        x, y = prec.batch(x, y)
        optimizer.zero_grad(set_to_none=True)
        with prec.autocast():
            logits = model(x)
            loss = loss_fn(logits, y)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        with torch.no_grad():  # device-side sums: no host sync (no .item(), no host-to-device tensor) per step
            sums[0] += loss.detach().double() * len(y)
            sums[1] += (logits.argmax(1) == y).sum()
            sums[2] += len(y)
    return _stats(sum_across(sums, info), 0.0)


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    loader,
    prec: Precision,
    info: Dist,
    num_classes: int,
    desc: str = "eval",
    show_progress: bool = True,
) -> tuple[EpochStats, torch.Tensor]:
    """Loss and accuracy over all ranks' shards, and the confusion matrix (rows: true, cols: predicted)."""
    model.eval()
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    loss_sum = torch.zeros((), dtype=torch.float64, device=prec.device)
    confusion = torch.zeros(num_classes * num_classes, dtype=torch.int64, device=prec.device)
    for x, y in tqdm(loader, desc=desc, leave=False, disable=not show_progress, unit="batch"):
        x, y = prec.batch(x, y)
        with prec.autocast():
            logits = model(x)
        loss_sum += loss_fn(logits.float(), y).double()
        confusion += torch.bincount(y * num_classes + logits.argmax(1), minlength=num_classes * num_classes)
    sum_across(loss_sum, info)
    confusion = sum_across(confusion, info).view(num_classes, num_classes).cpu()
    n, correct = int(confusion.sum()), int(confusion.diag().sum())
    return EpochStats(float(loss_sum) / max(n, 1), correct / max(n, 1), n), confusion
