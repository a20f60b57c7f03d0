"""Training configuration: one typed dataclass whose fields carry their defaults and help text.

The command line is generated from the fields, so a default is written once.
Fields marked ``profiled`` take the data source's profile when the flag is left
out (the reference recipe for image folders, a tiny CNN for the offline demo, a
28 px grayscale recipe for Fashion-MNIST; see ``train/sources.py``); a flag
given explicitly always wins.
"""

from __future__ import annotations

import argparse
from dataclasses import MISSING, Field, dataclass, fields
from pathlib import Path

from core.cli import add_fields, opt, profiled_fields
from core.failures import prog_name
from train.datacheck import MIN_PER_CLASS
from train.sources import source_for, sources


@dataclass
class TrainConfig:
    data: str = opt(MISSING, "image folder (Animals-10 or class-per-folder), 'synthetic', or 'fashion-mnist[:ROOT]'")
    out: Path = opt(Path("runs/train"), "run folder")
    # The reference recipe (VGG16 on Animals-10, docs/training.md); data sources may change these.
    arch: str = opt("vgg16", "vgg16, tinycnn, or any torchvision classification model", profiled=True)
    weights: str = opt("imagenet", "imagenet, none, or a path to a local weights file", profiled=True)
    img_size: int = opt(224, "crop size; eval resizes the shorter side to img_size*256/224", profiled=True)
    epochs: int = opt(5, "epochs to train", profiled=True)
    lr: float = opt(1e-3, "Adam learning rate", profiled=True)
    t_max: int = opt(2, "CosineAnnealingLR T_max in epochs", profiled=True)
    rotation: float = opt(25.0, "RandomRotation degrees (0 disables)", profiled=True)
    crop_scale: float = opt(0.08, "RandomResizedCrop smallest area fraction", profiled=True)
    resize: int | None = opt(None, "eval resize of the shorter side; unset: img_size*256/224", profiled=True)
    batch_size: int = opt(32, "batch size per process")
    eta_min: float = opt(1e-5, "CosineAnnealingLR eta_min")
    finetune: bool = opt(False, "train all layers (default: frozen features, the reference recipe)")
    hflip: bool = opt(True, "no RandomHorizontalFlip", flag="--no-hflip")
    seed: int = opt(0, "split, initialisation, shuffling, augmentation")
    deterministic: bool = opt(False, "torch deterministic algorithms (warn_only) and cuDNN deterministic; slower")
    device: str = opt("auto", "auto, cpu, cuda, cuda:1... (torchrun: cuda:LOCAL_RANK)")
    amp: str = opt(
        "auto",
        "mixed precision on CUDA (auto: bf16 where supported, else fp16); always off on CPU",
        choices=["auto", "bf16", "fp16", "off"],
    )
    channels_last: bool = opt(True, "keep NCHW memory format on CUDA", flag="--no-channels-last")
    workers: int = opt(-1, "DataLoader workers per process (-1: the CPUs this process may use, minus one)")
    scan_workers: int = opt(-1, "processes checking image files (-1: all cores)")
    resume: bool = opt(False, "continue from OUT/last.pt")
    download: bool = opt(
        True, "fashion-mnist: fail instead of downloading when the files are missing", flag="--no-download"
    )
    synthetic_per_class: int = opt(30, "synthetic: images per class")
    min_per_class: int = opt(
        MIN_PER_CLASS, "refuse classes with fewer images (val and test need some of each); 0 = allow, for experiments"
    )
    # The input path (docs/training.md, "GPU input path").
    loader: str = opt(
        "auto",
        "training input: gpu (workers read bytes; JPEG decode and augmentation batched on the device), "
        "cpu (workers decode and augment); auto: gpu on CUDA for image folders, else cpu",
        choices=["auto", "cpu", "gpu"],
    )
    prefetch: int = opt(4, "batches each DataLoader worker prepares ahead")
    synthetic_size: str | None = opt(
        None, "synthetic: image size WxH, each side drawn within +-10%% (400x300: Animals-10's); unset: 80-160 px"
    )
    progress: bool = opt(True, "no progress bars", flag="--no-progress")

    @property
    def resize_shorter(self) -> int:
        """Eval resize scales with the crop: 256 for 224, as torchvision's recipe."""
        return self.resize if self.resize else round(self.img_size * 256 / 224)


def _profile_help(f: Field) -> str:
    """``(default 5; synthetic 6, fashion-mnist 5)``: every source's value, from the one registry."""
    others = [f"{s.name} {s.profile[f.name]}" for s in sources() if f.name in s.profile]
    shown = f"default {f.default}" + (f"; {', '.join(others)}" if others else "")
    return f"{f.metadata['help']} ({shown})"


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog_name("train"), description="Fine-tune an image classifier.")
    add_fields(p, TrainConfig, _profile_help)
    p.add_argument("--debug", action="store_true", help="show the full traceback when the command fails (or DEBUG=1)")
    return p


def parse_config(argv: list[str] | None = None) -> TrainConfig:
    args = vars(get_parser().parse_args(argv))
    args.pop("debug")  # how errors are shown, not part of the run's recipe
    profile = source_for(args["data"]).profile
    defaults = {f.name: f.default for f in fields(TrainConfig)}
    for name in profiled_fields(TrainConfig):
        if args.get(name) is None:
            args[name] = profile.get(name, defaults[name])
    return TrainConfig(**args)
