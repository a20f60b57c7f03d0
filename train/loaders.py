"""Data sources -> datasets -> DataLoaders, for one process or one torchrun rank.

Shuffling is reseeded from (seed, epoch, rank) at the start of every epoch, so a
run resumed at epoch k sees the same batches as an uninterrupted one. Under
torchrun the training set goes through ``DistributedSampler`` (which pads to
equal shards, harmless for training); the evaluation sets are cut into
unpadded shards ``rank, rank + world, ...`` so summed counts are exact.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, Subset

from service.contract import PreprocessSpec
from train import fashion
from train.config import TrainConfig
from train.data import ImageFileDataset, Prepared, prepare_split
from train.distributed import Dist, rank0_first
from train.synthetic import make_synthetic
from train.transforms import IMAGENET_MEAN, IMAGENET_STD, eval_transform, train_transform


def prepare_data(cfg: TrainConfig, info: Dist) -> Prepared:
    """Synthetic, Fashion-MNIST or an image folder, split into ``cfg.out/split.csv`` (rank 0 writes)."""
    cfg.out.mkdir(parents=True, exist_ok=True)
    with rank0_first(info):
        reuse = cfg.resume or not info.is_main
        if cfg.data == "fashion-mnist" or cfg.data.startswith("fashion-mnist:"):
            return fashion.prepare(fashion.parse_source(cfg.data), cfg.out, cfg.seed, reuse, cfg.download)
        if cfg.data == "synthetic":
            root = make_synthetic(cfg.out / "synthetic-data", per_class=cfg.synthetic_per_class, seed=cfg.seed)
        else:
            root = Path(cfg.data)
            if not root.is_dir():
                raise FileNotFoundError(f"--data {cfg.data}: not a folder (see docs/training.md)")
        return prepare_split(root, cfg.out, cfg.seed, reuse, cfg.scan_workers, cfg.progress and info.is_main)


def preprocess_spec(cfg: TrainConfig, data: Prepared) -> PreprocessSpec:
    """What export writes into the model: eval resize, crop, and the source's mean/std."""
    mean, std = (fashion.MEAN, fashion.STD) if data.kind == "fashion-mnist" else (IMAGENET_MEAN, IMAGENET_STD)
    return PreprocessSpec(resize_shorter=cfg.resize_shorter, crop=(cfg.img_size, cfg.img_size), mean=mean, std=std)


def make_dataset(data: Prepared, split: str, transform):
    entries = data.split_entries(split)
    if data.kind == "fashion-mnist":
        return fashion.FashionDataset(data.extra["sets"], entries, transform)
    return ImageFileDataset(data.root, entries, data.color, transform)


def default_workers(info: Dist) -> int:
    """Leave one core per process for the training loop itself; at most 8 per process."""
    per_process = (os.cpu_count() or 1) // max(info.local_world_size, 1)
    return min(8, max(0, per_process - 1))


@dataclass
class Loaders:
    train: DataLoader
    val: DataLoader
    test: DataLoader
    generator: torch.Generator
    sampler: DistributedSampler | None

    def start_epoch(self, seed: int, epoch: int, rank: int) -> None:
        """Shuffle order and worker seeds depend on (seed, epoch, rank) only: resume-safe."""
        self.generator.manual_seed(epoch_seed(seed, epoch, rank))
        if self.sampler is not None:
            self.sampler.set_epoch(epoch)


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    return seed * 1_000_003 + epoch * 1009 + rank


def make_loaders(cfg: TrainConfig, data: Prepared, spec: PreprocessSpec, info: Dist,
                 device: torch.device) -> Loaders:
    workers = cfg.workers if cfg.workers >= 0 else default_workers(info)
    common = {"batch_size": cfg.batch_size, "num_workers": workers, "pin_memory": device.type == "cuda"}
    gen = torch.Generator().manual_seed(cfg.seed)
    train_ds = make_dataset(data, "train", train_transform(spec, cfg.rotation, cfg.hflip, cfg.crop_scale))
    sampler = (DistributedSampler(train_ds, info.world_size, info.rank, shuffle=True, seed=cfg.seed)
               if info.enabled else None)
    # Train workers are not persistent: fresh worker seeds every epoch keep --resume exact.
    train = DataLoader(train_ds, sampler=sampler or RandomSampler(train_ds, generator=gen), generator=gen,
                       **common)

    def shard(split: str) -> DataLoader:
        ds = make_dataset(data, split, eval_transform(spec))
        ds = Subset(ds, range(info.rank, len(ds), info.world_size)) if info.enabled else ds
        return DataLoader(ds, shuffle=False, persistent_workers=workers > 0, **common)

    return Loaders(train, shard("val"), shard("test"), gen, sampler)
