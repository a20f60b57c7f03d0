"""One epoch of training, one pass of evaluation."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from tqdm import tqdm


@dataclass
class EpochStats:
    loss: float
    accuracy: float
    n: int
    seconds: float = 0.0


def train_one_epoch(model: nn.Module, loader, optimizer, device: torch.device, desc: str = "train",
                    show_progress: bool = True) -> EpochStats:
    model.train()
    loss_fn = nn.CrossEntropyLoss()
    total_loss, correct, n = 0.0, 0, 0
    for x, y in tqdm(loader, desc=desc, leave=False, disable=not show_progress):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        logits = model(x)
        loss = loss_fn(logits, y)
        loss.backward()
        optimizer.step()
        total_loss += loss.item() * len(y)
        correct += (logits.argmax(1) == y).sum().item()
        n += len(y)
    return EpochStats(total_loss / max(n, 1), correct / max(n, 1), n)


@torch.inference_mode()
def evaluate(model: nn.Module, loader, device: torch.device, desc: str = "eval",
             show_progress: bool = True) -> tuple[EpochStats, list[int], list[int]]:
    """Loss and accuracy, plus (targets, predictions) for the report."""
    model.eval()
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    total_loss, targets, preds = 0.0, [], []
    for x, y in tqdm(loader, desc=desc, leave=False, disable=not show_progress):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        logits = model(x)
        total_loss += loss_fn(logits, y).item()
        targets += y.tolist()
        preds += logits.argmax(1).tolist()
    n = len(targets)
    acc = sum(int(a == b) for a, b in zip(targets, preds, strict=True)) / max(n, 1)
    return EpochStats(total_loss / max(n, 1), acc, n), targets, preds
