"""The training run: data -> model -> epochs -> best.pt/last.pt -> test report.

The same function runs as one process or as one rank under torchrun: every
rank trains on its shard, counts are summed across ranks, and rank 0 alone
writes files, from the unwrapped module.
"""

from __future__ import annotations

import logging
import os
import random
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from train.checkpoint import checkpoint_dict, load_checkpoint, rebuild_model, restore, save_atomic
from train.config import TrainConfig
from train.data import SplitData
from train.distributed import Dist, barrier, setup, sync_buffers, teardown
from train.engine import Precision, evaluate, pick_precision, train_one_epoch
from train.loaders import Loaders, make_loaders, prepare_data, preprocess_spec
from train.models import build_model, check_arch_and_weights
from train.report import build_report, describe, epoch_line, write_outputs

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


def build_trainee(cfg: TrainConfig, data: SplitData, prec: Precision, info: Dist) -> Trainee:
    torch.manual_seed(cfg.seed)  # the same initial weights on every rank and every run
    if cfg.weights == "none" and not cfg.finetune and cfg.arch != "tinycnn" and info.is_main:
        log.warning("--weights none without --finetune trains only the head on random features; add --finetune")
    in_channels = 1 if data.color == "L" else 3
    model = build_model(cfg.arch, len(data.labels), in_channels, cfg.weights, freeze_features=not cfg.finetune)
    model = model.to(prec.device)
    if prec.channels_last:
        model = model.to(memory_format=torch.channels_last)
    device_ids = [prec.device.index] if prec.device.type == "cuda" else None
    wrapped = DistributedDataParallel(model, device_ids=device_ids) if info.enabled else model
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=cfg.lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.t_max, eta_min=cfg.eta_min)
    scaler = torch.amp.GradScaler("cuda") if prec.amp_dtype == torch.float16 else None
    return Trainee(model, wrapped, optimizer, scheduler, scaler)


def run_epoch(
    cfg: TrainConfig, t: Trainee, loaders: Loaders, prec: Precision, info: Dist, epoch: int, n_classes: int
) -> dict[str, Any]:
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
        print(epoch_line(epoch, cfg.epochs, tr, va, lr), flush=True)
    return {
        "epoch": epoch,
        "train_loss": tr.loss,
        "train_accuracy": tr.accuracy,
        "val_loss": va.loss,
        "val_accuracy": va.accuracy,
        "lr": lr,
        "seconds": tr.seconds,
        "val_seconds": va.seconds,
        "train_images_per_s": tr.images_per_s,
        "val_images_per_s": va.n / max(va.seconds, 1e-9),
    }


def train(cfg: TrainConfig) -> dict[str, Any]:
    """Run the whole recipe; return the report that rank 0 also writes to ``report.json``."""
    info = setup(cfg.device)
    try:
        return _train(cfg, info)
    finally:
        teardown(info)


def _train(cfg: TrainConfig, info: Dist) -> dict[str, Any]:
    check_arch_and_weights(cfg.arch, cfg.weights)  # before any image is read or generated
    seed_everything(cfg.seed, cfg.deterministic)
    wall = time.perf_counter()
    data = prepare_data(cfg, info)
    spec, device = preprocess_spec(cfg), pick_device(cfg.device, info)
    prec = pick_precision(device, cfg.amp, cfg.channels_last)
    loaders = make_loaders(cfg, data, spec, info, prec)
    t = build_trainee(cfg, data, prec, info)
    if info.is_main:
        log.info("%s; %s", describe(cfg, data, t.model, prec, info), loaders.describe())
    start, history, best = restore(cfg, t, data)
    for epoch in range(start, cfg.epochs + 1):
        history.append(run_epoch(cfg, t, loaders, prec, info, epoch, len(data.labels)))
        if epoch == start and info.is_main and (note := loaders.decode_note()):
            log.info("%s%s", note, " on rank 0" if info.enabled else "")
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


def finish(
    cfg: TrainConfig, data: SplitData, loaders: Loaders, prec: Precision, info: Dist, history: list[dict], wall_s: float
) -> dict[str, Any]:
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
    report["loader"] = loaders.summary(info, prec.device)
    if info.is_main:
        write_outputs(cfg.out, best, report)
    barrier(info)
    return report
