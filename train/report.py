"""What a run tells its user: the start-up line, one line per epoch, and the final report.

``report.json`` holds every figure (accuracy, balanced accuracy, macro-F1,
per-class precision/recall/F1, confusion matrices, images/s); ``curves.png``
and ``confusion.png`` show them; ``best.pt`` gets the test figures too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from train.checkpoint import plain_args, save_atomic
from train.config import TrainConfig
from train.data import SPLITS, SplitData
from train.distributed import Dist
from train.engine import EpochStats, Precision
from train.metrics import classification_metrics
from train.plots import plot_confusion, plot_curves


def amp_name(prec: Precision) -> str:
    return str(prec.amp_dtype).removeprefix("torch.") if prec.amp_dtype else "off"


def epoch_line(epoch: int, total: int, tr: EpochStats, va: EpochStats, lr: float) -> str:
    return (
        f"epoch {epoch}/{total}  train loss {tr.loss:.4f} acc {tr.accuracy:.4f}  "
        f"val loss {va.loss:.4f} acc {va.accuracy:.4f}  lr {lr:.2e}  "
        f"{tr.seconds:.1f}s ({tr.images_per_s:.0f} img/s)"
    )


def describe(cfg: TrainConfig, data: SplitData, model: nn.Module, prec: Precision, info: Dist) -> str:
    counts = {s: len(data.split_entries(s)) for s in SPLITS}
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    amp = amp_name(prec)
    return (
        f"data {data.kind} {data.root}: {counts['train']} train / {counts['val']} val / {counts['test']} test, "
        f"{len(data.labels)} classes, {len(data.skipped)} unreadable skipped; model {cfg.arch} "
        f"{total / 1e6:.2f}M params ({trainable / 1e6:.2f}M trainable) on {prec.device}, amp {amp}, "
        f"{info.world_size} process(es)"
    )


def build_report(
    cfg: TrainConfig,
    data: SplitData,
    best: dict,
    history: list[dict],
    confusions: tuple[torch.Tensor, torch.Tensor],
    wall_s: float,
    eval_ips: float,
    prec: Precision,
    info: Dist,
) -> dict[str, Any]:
    val, test = (classification_metrics(cm.numpy(), data.labels) for cm in confusions)
    return {
        "labels": data.labels,
        "arch": cfg.arch,
        "data": cfg.data,
        "data_kind": data.kind,
        "best_epoch": best["epoch"],
        "epochs_run": len(history),
        "val_accuracy": val["accuracy"],
        "test_accuracy": test["accuracy"],
        "test_balanced_accuracy": test["balanced_accuracy"],
        "test_macro_f1": test["macro_f1"],
        "test_images": test["n"],
        "val": val,
        "test": test,
        "split_sha256": data.manifest_sha256,
        "split_counts": {s: len(data.split_entries(s)) for s in SPLITS},
        "skipped_files": len(data.skipped),
        "skipped": data.skipped[:100],
        "epochs": history,
        "wall_seconds": wall_s,
        "train_images_per_s": float(np.mean([h["train_images_per_s"] for h in history])),
        "eval_images_per_s": eval_ips,
        "device": str(prec.device),
        "device_name": _device_name(prec.device),
        "world_size": info.world_size,
        "amp": amp_name(prec),
        "channels_last": prec.channels_last,
        "args": plain_args(cfg),
    }


def _device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def write_outputs(out: Path, best: dict, report: dict[str, Any]) -> None:
    """report.json, curves.png, confusion.png; the test figures also go into best.pt."""
    best["test_accuracy"] = report["test_accuracy"]
    best["test_metrics"] = {k: report["test"][k] for k in ("accuracy", "balanced_accuracy", "macro_f1", "n")}
    save_atomic(best, out / "best.pt")
    (out / "report.json").write_text(json.dumps(report, indent=2))
    plot_curves(report["epochs"], out / "curves.png")
    title = f"test split, best epoch {report['best_epoch']}: accuracy {report['test_accuracy']:.4f}"
    plot_confusion(report["test"]["confusion_matrix"], report["labels"], out / "confusion.png", title)
    print(
        f"best epoch {report['best_epoch']}: val acc {report['val_accuracy']:.4f}, test acc "
        f"{report['test_accuracy']:.4f} (balanced {report['test_balanced_accuracy']:.4f}, macro-F1 "
        f"{report['test_macro_f1']:.4f}) on {report['test_images']} images; wrote {out}/best.pt, report.json, "
        "curves.png, confusion.png",
        flush=True,
    )
