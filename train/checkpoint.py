"""Checkpoints: plain tensors and containers, loadable with ``torch.load(weights_only=True)``.

A checkpoint carries everything export needs to rebuild the model without the
training flags: arch, labels, input, preprocessing, and the state dict.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

FORMAT = "image-classifier-checkpoint/1"


def save_atomic(obj: dict[str, Any], path: Path) -> None:
    """Write to a temp file in the same folder, then rename: never a half-written checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_checkpoint(path: Path) -> dict[str, Any]:
    ckpt = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ValueError(f"{path} is not a checkpoint written by `python -m train` (format {FORMAT})")
    return ckpt


def rebuild_model(ckpt: dict[str, Any]) -> torch.nn.Module:
    """The trained network from the checkpoint alone, in eval mode."""
    from train.models import build_model

    model = build_model(ckpt["arch"], len(ckpt["labels"]), in_channels=1 if ckpt["input"]["color"] == "L" else 3)
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()
