"""Training configuration: one typed dataclass, filled from the command line."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields
from pathlib import Path

# --data synthetic is the offline walking skeleton: a tiny CNN at 64 px that
# learns in seconds on a CPU. Flags given explicitly still win.
SYNTHETIC_PROFILE = {"arch": "tinycnn", "weights": "none", "img_size": 64, "epochs": 3, "lr": 3e-3}
DEFAULTS = {"arch": "vgg16", "weights": "imagenet", "img_size": 224, "epochs": 5, "lr": 1e-3}


@dataclass
class TrainConfig:
    data: str
    out: Path
    arch: str
    weights: str
    img_size: int
    epochs: int
    lr: float
    batch_size: int = 32
    seed: int = 0
    finetune: bool = False
    t_max: int = 2
    eta_min: float = 1e-5
    rotation: float = 25.0
    workers: int = -1
    device: str = "auto"
    resume: bool = False
    synthetic_per_class: int = 30
    progress: bool = True

    @property
    def resize_shorter(self) -> int:
        """Eval resize scales with the crop: 256 for 224, as torchvision's recipe."""
        return round(self.img_size * 256 / 224)


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m train", description="Fine-tune an image classifier.")
    p.add_argument("--data", required=True, help="image folder (Animals-10 or class-per-folder) or 'synthetic'")
    p.add_argument("--out", type=Path, default=Path("runs/train"), help="run folder")
    p.add_argument("--arch", help="vgg16 (default), tinycnn, or any torchvision classification model")
    p.add_argument("--weights", help="imagenet (default), none, or a path to a local weights file")
    p.add_argument("--img-size", type=int, help="crop size (default 224); eval resizes to img_size*256/224")
    p.add_argument("--epochs", type=int)
    p.add_argument("--lr", type=float, help="Adam learning rate (default 1e-3)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--finetune", action="store_true", help="train all layers (default: frozen features)")
    p.add_argument("--t-max", type=int, default=2, help="CosineAnnealingLR T_max (reference: 2)")
    p.add_argument("--eta-min", type=float, default=1e-5)
    p.add_argument("--rotation", type=float, default=25.0, help="RandomRotation degrees (0 disables)")
    p.add_argument("--workers", type=int, default=-1, help="DataLoader workers (-1: sized to the machine)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1...")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--synthetic-per-class", type=int, default=30)
    p.add_argument("--no-progress", dest="progress", action="store_false")
    return p


def parse_config(argv: list[str] | None = None) -> TrainConfig:
    args = vars(get_parser().parse_args(argv))
    base = SYNTHETIC_PROFILE if args["data"] == "synthetic" else DEFAULTS
    for key, value in base.items():
        if args.get(key) is None:
            args[key] = value
    names = {f.name for f in fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in args.items() if k in names})
