"""The training run: data -> model -> epochs -> best.pt/last.pt -> test report."""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from service.contract import PreprocessSpec
from train.checkpoint import FORMAT, load_checkpoint, save_atomic
from train.config import TrainConfig
from train.data import ImageFileDataset, Prepared, prepare_split
from train.engine import EpochStats, evaluate, train_one_epoch
from train.models import build_model
from train.synthetic import make_synthetic
from train.transforms import IMAGENET_MEAN, IMAGENET_STD, eval_transform, train_transform

log = logging.getLogger("train")


def resolve_data(cfg: TrainConfig) -> Path:
    if cfg.data == "synthetic":
        return make_synthetic(cfg.out / "synthetic-data", per_class=cfg.synthetic_per_class, seed=cfg.seed)
    path = Path(cfg.data)
    if not path.is_dir():
        raise FileNotFoundError(f"--data {cfg.data}: not a folder (see README, 'Train on Animals-10')")
    return path


def preprocess_spec(cfg: TrainConfig) -> PreprocessSpec:
    return PreprocessSpec(resize_shorter=cfg.resize_shorter, crop=(cfg.img_size, cfg.img_size),
                          mean=IMAGENET_MEAN, std=IMAGENET_STD)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def make_loaders(cfg: TrainConfig, data: Prepared, spec: PreprocessSpec) -> dict[str, DataLoader]:
    workers = cfg.workers if cfg.workers >= 0 else min(8, max(0, (os.cpu_count() or 1) - 1))
    tf = {"train": train_transform(spec, cfg.rotation), "val": eval_transform(spec), "test": eval_transform(spec)}
    loaders = {}
    for split in ("train", "val", "test"):
        ds = ImageFileDataset(data.root, [e for e in data.entries if e.split == split], "RGB", tf[split])
        gen = torch.Generator().manual_seed(cfg.seed)
        loaders[split] = DataLoader(ds, batch_size=cfg.batch_size, shuffle=split == "train", generator=gen,
                                    num_workers=workers, persistent_workers=workers > 0)
    return loaders


def checkpoint_dict(cfg: TrainConfig, model, optimizer, scheduler, data: Prepared, spec: PreprocessSpec,
                    epoch: int, history: list[dict], best_val: float) -> dict[str, Any]:
    args = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()}
    return {
        "format": FORMAT, "arch": cfg.arch, "labels": data.labels, "folders": data.folders,
        "input": {"color": "RGB", "height": cfg.img_size, "width": cfg.img_size},
        "preprocess": {"resize_shorter": spec.resize_shorter, "crop": list(spec.crop), "interpolation": "bilinear",
                       "scale": spec.scale, "mean": list(spec.mean), "std": list(spec.std)},
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
        "epoch": epoch, "history": history, "best_val_accuracy": best_val,
        "val_accuracy": history[-1]["val_accuracy"] if history else None,
        "split_sha256": data.manifest_sha256, "data_root": str(data.root), "args": args,
    }


def _epoch_line(epoch: int, total: int, tr: EpochStats, va: EpochStats, lr: float) -> str:
    return (f"epoch {epoch}/{total}  train loss {tr.loss:.4f} acc {tr.accuracy:.4f}  "
            f"val loss {va.loss:.4f} acc {va.accuracy:.4f}  lr {lr:.2e}  {tr.seconds:.1f}s")


def train(cfg: TrainConfig) -> dict[str, Any]:
    """Run the whole recipe; return the report that is also written to ``report.json``."""
    torch.manual_seed(cfg.seed)
    cfg.out.mkdir(parents=True, exist_ok=True)
    data = prepare_split(resolve_data(cfg), cfg.out, cfg.seed)
    spec, device = preprocess_spec(cfg), pick_device(cfg.device)
    loaders = make_loaders(cfg, data, spec)
    model = build_model(cfg.arch, len(data.labels), 3, cfg.weights, freeze_features=not cfg.finetune).to(device)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=cfg.lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.t_max, eta_min=cfg.eta_min)
    start_epoch, history, best_val = 1, [], -1.0
    if cfg.resume and (cfg.out / "last.pt").exists():
        last = load_checkpoint(cfg.out / "last.pt")
        model.load_state_dict(last["state_dict"])
        optimizer.load_state_dict(last["optimizer"])
        scheduler.load_state_dict(last["scheduler"])
        start_epoch, history, best_val = last["epoch"] + 1, last["history"], last["best_val_accuracy"]
        log.info("resuming from epoch %d", last["epoch"])
    wall = time.perf_counter()
    for epoch in range(start_epoch, cfg.epochs + 1):
        t0 = time.perf_counter()
        tr = train_one_epoch(model, loaders["train"], optimizer, device, f"epoch {epoch}", cfg.progress)
        tr.seconds = time.perf_counter() - t0
        va, _, _ = evaluate(model, loaders["val"], device, "val", cfg.progress)
        lr = optimizer.param_groups[0]["lr"]
        scheduler.step()
        history.append({"epoch": epoch, "train_loss": tr.loss, "train_accuracy": tr.accuracy, "val_loss": va.loss,
                        "val_accuracy": va.accuracy, "lr": lr, "seconds": tr.seconds,
                        "train_images_per_s": tr.n / max(tr.seconds, 1e-9)})
        print(_epoch_line(epoch, cfg.epochs, tr, va, lr), flush=True)
        ckpt = checkpoint_dict(cfg, model, optimizer, scheduler, data, spec, epoch, history, max(best_val, va.accuracy))
        if va.accuracy > best_val:
            best_val = va.accuracy
            save_atomic(ckpt, cfg.out / "best.pt")
        save_atomic(ckpt, cfg.out / "last.pt")
    return finish(cfg, data, loaders, device, time.perf_counter() - wall)


def finish(cfg: TrainConfig, data: Prepared, loaders, device, wall_s: float) -> dict[str, Any]:
    """Evaluate best.pt on the test split; record it in best.pt and report.json."""
    best = load_checkpoint(cfg.out / "best.pt")
    model = build_model(best["arch"], len(best["labels"]), 3).to(device)
    model.load_state_dict(best["state_dict"])
    t0 = time.perf_counter()
    te, targets, preds = evaluate(model, loaders["test"], device, "test", cfg.progress)
    best["test_accuracy"] = te.accuracy
    save_atomic(best, cfg.out / "best.pt")
    report = {
        "labels": data.labels, "best_epoch": best["epoch"], "val_accuracy": best["val_accuracy"],
        "test_accuracy": te.accuracy, "test_images": te.n, "skipped_files": len(data.skipped),
        "skipped": data.skipped[:100], "split_sha256": data.manifest_sha256, "epochs": best["history"],
        "wall_seconds": wall_s, "eval_images_per_s": te.n / max(time.perf_counter() - t0, 1e-9),
        "targets": targets, "predictions": preds,
    }
    (cfg.out / "report.json").write_text(json.dumps(report, indent=2))
    print(f"best epoch {best['epoch']}: val acc {best['val_accuracy']:.4f}, test acc {te.accuracy:.4f} "
          f"on {te.n} images; wrote {cfg.out / 'best.pt'}", flush=True)
    return report
