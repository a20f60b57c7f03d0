"""Training configuration: one typed dataclass, filled from the command line.

Flags left out take the value of the data source's profile: the reference
recipe for image folders, a tiny CNN for the offline demo, and a 28 px
grayscale recipe for Fashion-MNIST. Flags given explicitly always win.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields
from pathlib import Path

# The reference recipe (VGG16 on Animals-10), see docs/training.md.
DEFAULTS = {"arch": "vgg16", "weights": "imagenet", "img_size": 224, "epochs": 5, "lr": 1e-3, "t_max": 2,
            "rotation": 25.0, "crop_scale": 0.08}
# --data synthetic is the offline walking skeleton: a tiny CNN at 64 px that
# learns in seconds on a CPU; one cosine half-period over the run ends at a
# low learning rate, so the demo model is confident.
SYNTHETIC_PROFILE = {**DEFAULTS, "arch": "tinycnn", "weights": "none", "img_size": 64, "epochs": 6, "lr": 5e-3,
                     "t_max": 6}
# Fashion-MNIST is already 28x28 and centred: no rotation, mild crops, eval
# keeps the image as it is (resize 28, crop 28).
FASHION_PROFILE = {**DEFAULTS, "arch": "tinycnn", "weights": "none", "img_size": 28, "resize": 28, "epochs": 5,
                   "lr": 3e-3, "t_max": 5, "rotation": 0.0, "crop_scale": 0.7}


@dataclass
class TrainConfig:
    data: str
    out: Path
    arch: str
    weights: str
    img_size: int
    epochs: int
    lr: float
    t_max: int
    rotation: float
    crop_scale: float
    resize: int | None = None
    batch_size: int = 32
    seed: int = 0
    finetune: bool = False
    eta_min: float = 1e-5
    hflip: bool = True
    workers: int = -1
    scan_workers: int = -1
    device: str = "auto"
    amp: str = "auto"
    channels_last: bool = True
    deterministic: bool = False
    resume: bool = False
    download: bool = True
    synthetic_per_class: int = 30
    progress: bool = True

    @property
    def resize_shorter(self) -> int:
        """Eval resize scales with the crop: 256 for 224, as torchvision's recipe."""
        return self.resize if self.resize else round(self.img_size * 256 / 224)


def _profile(data: str) -> dict:
    if data == "synthetic":
        return SYNTHETIC_PROFILE
    if data == "fashion-mnist" or data.startswith("fashion-mnist:"):
        return FASHION_PROFILE
    return DEFAULTS


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m train", description="Fine-tune an image classifier.")
    p.add_argument("--data", required=True,
                   help="image folder (Animals-10 or class-per-folder), 'synthetic', or 'fashion-mnist[:ROOT]'")
    p.add_argument("--out", type=Path, default=Path("runs/train"), help="run folder")
    p.add_argument("--arch", help="vgg16 (default), tinycnn, or any torchvision classification model")
    p.add_argument("--weights", help="imagenet (default), none, or a path to a local weights file")
    p.add_argument("--finetune", action="store_true", help="train all layers (default: frozen features)")
    p.add_argument("--img-size", type=int, help="crop size (default 224); eval resizes to img_size*256/224")
    p.add_argument("--resize", type=int, help="eval resize of the shorter side (default img_size*256/224)")
    p.add_argument("--epochs", type=int, help="default 5")
    p.add_argument("--batch-size", type=int, default=32, help="per process (default 32)")
    p.add_argument("--lr", type=float, help="Adam learning rate (default 1e-3)")
    p.add_argument("--t-max", type=int, help="CosineAnnealingLR T_max in epochs (reference: 2)")
    p.add_argument("--eta-min", type=float, default=1e-5, help="CosineAnnealingLR eta_min (default 1e-5)")
    p.add_argument("--rotation", type=float, help="RandomRotation degrees (default 25; 0 disables)")
    p.add_argument("--crop-scale", type=float, help="RandomResizedCrop smallest area fraction (default 0.08)")
    p.add_argument("--no-hflip", dest="hflip", action="store_false", help="no RandomHorizontalFlip")
    p.add_argument("--seed", type=int, default=0, help="split, initialisation, shuffling, augmentation")
    p.add_argument("--deterministic", action="store_true",
                   help="torch deterministic algorithms (warn_only) and cuDNN deterministic; slower on GPU")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1... (torchrun: cuda:LOCAL_RANK)")
    p.add_argument("--amp", default="auto", choices=["auto", "bf16", "fp16", "off"],
                   help="mixed precision on CUDA (auto: bf16 where supported, else fp16); always off on CPU")
    p.add_argument("--no-channels-last", dest="channels_last", action="store_false",
                   help="keep NCHW memory format on CUDA")
    p.add_argument("--workers", type=int, default=-1, help="DataLoader workers per process (-1: sized to the machine)")
    p.add_argument("--scan-workers", type=int, default=-1, help="processes checking image files (-1: all cores)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--no-download", dest="download", action="store_false",
                   help="fashion-mnist: fail instead of downloading when the files are missing")
    p.add_argument("--synthetic-per-class", type=int, default=30)
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    return p


def parse_config(argv: list[str] | None = None) -> TrainConfig:
    args = vars(get_parser().parse_args(argv))
    for key, value in _profile(args["data"]).items():
        if args.get(key) is None:
            args[key] = value
    names = {f.name for f in fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in args.items() if k in names})
