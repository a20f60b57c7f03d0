"""Checkpoints: the schema, written and read here only.

Plain tensors and containers, loadable with ``torch.load(weights_only=True)``.
A checkpoint carries everything export needs to rebuild the model without the
training flags: arch, labels, the input and preprocessing specs (through the
contract's own ``to_dict``), and the state dict; plus what ``--resume`` restores.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from core.contract import INPUT_NAME, InputSpec, PreprocessSpec
from train.errors import CheckpointError

if TYPE_CHECKING:
    from train.config import TrainConfig
    from train.data import SplitData
    from train.run import Trainee

FORMAT = "image-classifier-checkpoint/1"
log = logging.getLogger("train")
Best = dict[str, float]  # {"accuracy", "loss", "epoch"} of the best epoch so far


def plain_args(cfg: TrainConfig) -> dict[str, Any]:
    """The config as plain values (paths as strings), loadable with ``weights_only=True``."""
    return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()}


def checkpoint_dict(
    cfg: TrainConfig, t: Trainee, data: SplitData, spec: PreprocessSpec, epoch: int, history: list[dict], best: Best
) -> dict[str, Any]:
    """Plain tensors and containers only, so ``torch.load(weights_only=True)`` reads it."""
    return {
        "format": FORMAT,
        "arch": cfg.arch,
        "labels": data.labels,
        "folders": data.folders,
        "input": InputSpec(INPUT_NAME, data.color, cfg.img_size, cfg.img_size).to_dict(),
        "preprocess": spec.to_dict(),
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in t.model.state_dict().items()},
        "optimizer": t.optimizer.state_dict(),
        "scheduler": t.scheduler.state_dict(),
        "scaler": t.scaler.state_dict() if t.scaler is not None else None,
        "epoch": epoch,
        "history": history,
        "best_val_accuracy": best["accuracy"],
        "best_val_loss": best["loss"],
        "best_epoch": best["epoch"],
        "val_accuracy": history[-1]["val_accuracy"] if history else None,
        "split_sha256": data.manifest_sha256,
        "data_root": str(data.root),
        "data_kind": data.kind,
        "args": plain_args(cfg),
    }


def input_spec(ckpt: dict[str, Any]) -> InputSpec:
    return InputSpec.from_dict(ckpt["input"])


def preprocess_spec(ckpt: dict[str, Any]) -> PreprocessSpec:
    return PreprocessSpec.from_dict(ckpt["preprocess"])


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
    """The checkpoint at ``path``; a missing file, a folder or any other file is one ``CheckpointError`` line."""
    path = Path(path)
    expected = "not a checkpoint written by `python -m train`; pass the best.pt of a training run"
    if not path.exists():
        raise CheckpointError(
            f"{path} does not exist; train first (`python -m train ... --out RUN`), then pass RUN/best.pt"
        )
    if path.is_dir():
        inside = path / "best.pt"
        raise CheckpointError(
            f"{path} is a folder; pass {inside}" if inside.is_file() else f"{path} is a folder, {expected}"
        )
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch.load fails on foreign files with any error type (KeyError: 101...)
        pickled = "Unsupported global" in str(exc)  # weights_only refused a class: a whole pickled model
        detail = "holds pickled Python objects (a whole model?), " if pickled else "is "
        raise CheckpointError(f"{path} {detail}{expected}") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is {expected} (no format {FORMAT!r} inside)")
    return ckpt


def rebuild_model(ckpt: dict[str, Any]) -> torch.nn.Module:
    """The trained network from the checkpoint alone, in eval mode."""
    from train.models import build_model, load_weights

    model = build_model(ckpt["arch"], len(ckpt["labels"]), in_channels=input_spec(ckpt).channels)
    try:
        load_weights(model, ckpt["state_dict"], f"the checkpoint's arch is {ckpt['arch']}, but")
    except ValueError as exc:
        raise CheckpointError(str(exc)) from exc
    return model.eval()


def restore(cfg: TrainConfig, t: Trainee, data: SplitData) -> tuple[int, list[dict], Best]:
    """(first epoch to run, history, best so far) from ``last.pt`` under ``--resume``, or a fresh start."""
    best: Best = {"accuracy": -1.0, "loss": float("inf"), "epoch": 0}
    path = cfg.out / "last.pt"
    if not cfg.resume:
        return 1, [], best
    if not path.exists():
        log.warning("--resume: %s does not exist, starting from epoch 1", path)
        return 1, [], best
    last = load_checkpoint(path)
    if last["split_sha256"] != data.manifest_sha256:
        raise ValueError(f"{path} was trained on another split (split.csv changed); cannot resume")
    t.model.load_state_dict(last["state_dict"])
    t.optimizer.load_state_dict(last["optimizer"])
    t.scheduler.load_state_dict(last["scheduler"])
    if t.scaler is not None and last.get("scaler"):
        t.scaler.load_state_dict(last["scaler"])
    best = {
        "accuracy": last["best_val_accuracy"],
        "loss": last.get("best_val_loss", float("inf")),
        "epoch": last.get("best_epoch", 0),
    }
    log.info("resuming after epoch %d of %s", last["epoch"], path)
    return last["epoch"] + 1, list(last["history"]), best
