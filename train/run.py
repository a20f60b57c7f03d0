"""The training run: data -> model -> epochs -> best.pt/last.pt -> test report.

The same function runs as one process or as one rank under torchrun: every
rank trains on its shard, counts are summed across ranks, and rank 0 alone
writes files, from the unwrapped module.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from service.contract import PreprocessSpec
from train.checkpoint import FORMAT, load_checkpoint, rebuild_model, save_atomic
from train.config import TrainConfig
from train.data import SPLITS, Prepared
from train.distributed import Dist, barrier, setup, sync_buffers, teardown
from train.engine import EpochStats, Precision, evaluate, pick_precision, train_one_epoch
from train.loaders import Loaders, make_loaders, prepare_data, preprocess_spec
from train.metrics import classification_metrics
from train.models import build_model
from train.plots import plot_confusion, plot_curves

log = logging.getLogger("train")


def seed_everything(seed: int, deterministic: bool) -> None:
    """Seed Python, NumPy and torch; optionally ask torch for deterministic kernels.

    ``warn_only``: VGG16's AdaptiveAvgPool2d backward has no deterministic CUDA
    kernel, and a warning beats refusing to train.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    elif torch.cuda.is_available():
        torch.backends.cudnn.benchmark = True


def pick_device(name: str, info: Dist) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and info.enabled:
        return torch.device("cuda", info.local_rank)
    return torch.device(name)


@dataclass
class Trainee:
    """The model and everything that --resume restores."""

    model: nn.Module  # unwrapped: what is saved and evaluated
    wrapped: nn.Module  # DistributedDataParallel under torchrun, else the same module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler | None


def build_trainee(cfg: TrainConfig, data: Prepared, prec: Precision, info: Dist) -> Trainee:
    torch.manual_seed(cfg.seed)  # the same initial weights on every rank and every run
    if cfg.weights == "none" and not cfg.finetune and cfg.arch != "tinycnn" and info.is_main:
        log.warning("--weights none without --finetune trains only the head on random features; add --finetune")
    in_channels = 1 if data.color == "L" else 3
    model = build_model(cfg.arch, len(data.labels), in_channels, cfg.weights, freeze_features=not cfg.finetune)
    model = model.to(prec.device, memory_format=torch.channels_last if prec.channels_last else torch.preserve_format)
    device_ids = [prec.device.index] if prec.device.type == "cuda" else None
    wrapped = DistributedDataParallel(model, device_ids=device_ids) if info.enabled else model
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=cfg.lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.t_max, eta_min=cfg.eta_min)
    scaler = torch.amp.GradScaler("cuda") if prec.amp_dtype == torch.float16 else None
    return Trainee(model, wrapped, optimizer, scheduler, scaler)


def plain_args(cfg: TrainConfig) -> dict[str, Any]:
    """The config as plain values (paths as strings), loadable with ``weights_only=True``."""
    return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()}


def amp_name(prec: Precision) -> str:
    return str(prec.amp_dtype).removeprefix("torch.") if prec.amp_dtype else "off"


def checkpoint_dict(cfg: TrainConfig, t: Trainee, data: Prepared, spec: PreprocessSpec, epoch: int,
                    history: list[dict], best: dict[str, float]) -> dict[str, Any]:
    """Plain tensors and containers only, so ``torch.load(weights_only=True)`` reads it."""
    return {
        "format": FORMAT, "arch": cfg.arch, "labels": data.labels, "folders": data.folders,
        "input": {"color": data.color, "height": cfg.img_size, "width": cfg.img_size},
        "preprocess": {"resize_shorter": spec.resize_shorter, "crop": list(spec.crop), "interpolation": "bilinear",
                       "scale": spec.scale, "mean": list(spec.mean), "std": list(spec.std)},
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in t.model.state_dict().items()},
        "optimizer": t.optimizer.state_dict(), "scheduler": t.scheduler.state_dict(),
        "scaler": t.scaler.state_dict() if t.scaler is not None else None,
        "epoch": epoch, "history": history, "best_val_accuracy": best["accuracy"], "best_val_loss": best["loss"],
        "best_epoch": best["epoch"], "val_accuracy": history[-1]["val_accuracy"] if history else None,
        "split_sha256": data.manifest_sha256, "data_root": str(data.root), "data_kind": data.kind,
        "args": plain_args(cfg),
    }


def resume(cfg: TrainConfig, t: Trainee, data: Prepared) -> tuple[int, list[dict], dict[str, float]]:
    """(first epoch to run, history, best so far) from ``last.pt``, or a fresh start."""
    best = {"accuracy": -1.0, "loss": float("inf"), "epoch": 0}
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
    best = {"accuracy": last["best_val_accuracy"], "loss": last.get("best_val_loss", float("inf")),
            "epoch": last.get("best_epoch", 0)}
    log.info("resuming after epoch %d of %s", last["epoch"], path)
    return last["epoch"] + 1, list(last["history"]), best


def _epoch_line(epoch: int, total: int, tr: EpochStats, va: EpochStats, lr: float) -> str:
    return (f"epoch {epoch}/{total}  train loss {tr.loss:.4f} acc {tr.accuracy:.4f}  "
            f"val loss {va.loss:.4f} acc {va.accuracy:.4f}  lr {lr:.2e}  "
            f"{tr.seconds:.1f}s ({tr.images_per_s:.0f} img/s)")


def run_epoch(cfg: TrainConfig, t: Trainee, loaders: Loaders, prec: Precision, info: Dist, epoch: int,
              n_classes: int) -> dict[str, Any]:
    """Train one epoch, validate, step the scheduler; return the history row."""
    loaders.start_epoch(cfg.seed, epoch, info.rank)
    torch.manual_seed(loaders.generator.initial_seed())  # dropout and in-process augmentation
    show = cfg.progress and info.is_main
    t0 = time.perf_counter()
    tr = train_one_epoch(t.wrapped, loaders.train, t.optimizer, prec, info, t.scaler, f"epoch {epoch}", show)
    tr.seconds = time.perf_counter() - t0
    sync_buffers(t.model, info)
    t1 = time.perf_counter()
    va, _ = evaluate(t.model, loaders.val, prec, info, n_classes, "val", show)
    va.seconds = time.perf_counter() - t1
    lr = t.optimizer.param_groups[0]["lr"]
    t.scheduler.step()
    if info.is_main:
        print(_epoch_line(epoch, cfg.epochs, tr, va, lr), flush=True)
    return {"epoch": epoch, "train_loss": tr.loss, "train_accuracy": tr.accuracy, "val_loss": va.loss,
            "val_accuracy": va.accuracy, "lr": lr, "seconds": tr.seconds, "val_seconds": va.seconds,
            "train_images_per_s": tr.images_per_s, "val_images_per_s": va.n / max(va.seconds, 1e-9)}


def train(cfg: TrainConfig) -> dict[str, Any]:
    """Run the whole recipe; return the report that rank 0 also writes to ``report.json``."""
    info = setup(cfg.device)
    try:
        return _train(cfg, info)
    finally:
        teardown(info)


def _train(cfg: TrainConfig, info: Dist) -> dict[str, Any]:
    seed_everything(cfg.seed, cfg.deterministic)
    wall = time.perf_counter()
    data = prepare_data(cfg, info)
    spec, device = preprocess_spec(cfg, data), pick_device(cfg.device, info)
    prec = pick_precision(device, cfg.amp, cfg.channels_last)
    loaders = make_loaders(cfg, data, spec, info, device)
    t = build_trainee(cfg, data, prec, info)
    if info.is_main:
        log.info("%s", describe(cfg, data, t.model, prec, info))
    start, history, best = resume(cfg, t, data)
    for epoch in range(start, cfg.epochs + 1):
        history.append(run_epoch(cfg, t, loaders, prec, info, epoch, len(data.labels)))
        row = history[-1]
        improved = (row["val_accuracy"], -row["val_loss"]) > (best["accuracy"], -best["loss"])
        if improved:  # best by val accuracy; ties go to the lower val loss
            best = {"accuracy": row["val_accuracy"], "loss": row["val_loss"], "epoch": epoch}
        if info.is_main:
            ckpt = checkpoint_dict(cfg, t, data, spec, epoch, history, best)
            if improved:
                save_atomic(ckpt, cfg.out / "best.pt")
            save_atomic(ckpt, cfg.out / "last.pt")
        barrier(info)
    return finish(cfg, data, loaders, prec, info, history, time.perf_counter() - wall)


def describe(cfg: TrainConfig, data: Prepared, model: nn.Module, prec: Precision, info: Dist) -> str:
    counts = {s: len(data.split_entries(s)) for s in SPLITS}
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    amp = amp_name(prec)
    return (f"data {data.kind} {data.root}: {counts['train']} train / {counts['val']} val / {counts['test']} test, "
            f"{len(data.labels)} classes, {len(data.skipped)} unreadable skipped; model {cfg.arch} "
            f"{total / 1e6:.2f}M params ({trainable / 1e6:.2f}M trainable) on {prec.device}, amp {amp}, "
            f"{info.world_size} process(es)")


def finish(cfg: TrainConfig, data: Prepared, loaders: Loaders, prec: Precision, info: Dist, history: list[dict],
           wall_s: float) -> dict[str, Any]:
    """Evaluate best.pt on val and test (every rank its shard); rank 0 writes the report and figures."""
    best = load_checkpoint(cfg.out / "best.pt")
    model = rebuild_model(best).to(prec.device)
    if prec.channels_last:
        model = model.to(memory_format=torch.channels_last)
    n = len(best["labels"])
    show = cfg.progress and info.is_main
    _, val_cm = evaluate(model, loaders.val, prec, info, n, "val (best)", show)
    t0 = time.perf_counter()
    te, test_cm = evaluate(model, loaders.test, prec, info, n, "test", show)
    eval_s = time.perf_counter() - t0
    report = build_report(cfg, data, best, history, (val_cm, test_cm), wall_s, te.n / max(eval_s, 1e-9), prec, info)
    if info.is_main:
        write_outputs(cfg.out, best, report)
    barrier(info)
    return report


def build_report(cfg: TrainConfig, data: Prepared, best: dict, history: list[dict],
                 confusions: tuple[torch.Tensor, torch.Tensor], wall_s: float, eval_ips: float, prec: Precision,
                 info: Dist) -> dict[str, Any]:
    val, test = (classification_metrics(cm.numpy(), data.labels) for cm in confusions)
    return {
        "labels": data.labels, "arch": cfg.arch, "data": cfg.data, "data_kind": data.kind,
        "best_epoch": best["epoch"], "epochs_run": len(history),
        "val_accuracy": val["accuracy"], "test_accuracy": test["accuracy"],
        "test_balanced_accuracy": test["balanced_accuracy"], "test_macro_f1": test["macro_f1"],
        "test_images": test["n"], "val": val, "test": test,
        "split_sha256": data.manifest_sha256,
        "split_counts": {s: len(data.split_entries(s)) for s in SPLITS},
        "skipped_files": len(data.skipped), "skipped": data.skipped[:100],
        "epochs": history, "wall_seconds": wall_s,
        "train_images_per_s": float(np.mean([h["train_images_per_s"] for h in history])),
        "eval_images_per_s": eval_ips,
        "device": str(prec.device), "device_name": _device_name(prec.device), "world_size": info.world_size,
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
    print(f"best epoch {report['best_epoch']}: val acc {report['val_accuracy']:.4f}, test acc "
          f"{report['test_accuracy']:.4f} (balanced {report['test_balanced_accuracy']:.4f}, macro-F1 "
          f"{report['test_macro_f1']:.4f}) on {report['test_images']} images; wrote {out}/best.pt, report.json, "
          "curves.png, confusion.png", flush=True)
