"""Data sources -> datasets -> DataLoaders, for one process or one torchrun rank.

Shuffling is reseeded from (seed, epoch, rank) at the start of every epoch, so a
run resumed at epoch k sees the same batches as an uninterrupted one. Under
torchrun the training set goes through ``DistributedSampler`` (which pads to
equal shards, harmless for training); the evaluation sets are cut into
unpadded shards ``rank, rank + world, ...`` so summed counts are exact.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, Subset

from core.contract import PreprocessSpec
from train.config import TrainConfig
from train.data import SplitData
from train.datacheck import check_dataset
from train.distributed import Dist, rank0_first
from train.sources import source_for
from train.transforms import eval_transform, train_transform


def prepare_data(cfg: TrainConfig, info: Dist) -> SplitData:
    """The source named by ``--data``, split into ``cfg.out/split.csv`` (rank 0 writes, the others read).

    Data too small to measure anything is refused here, before a model is built.
    """
    cfg.out.mkdir(parents=True, exist_ok=True)
    with rank0_first(info):
        reuse = cfg.resume or not info.is_main
        data = source_for(cfg.data).prepare(cfg, reuse, cfg.progress and info.is_main)
    for warning in check_dataset(data, cfg.min_per_class):
        if info.is_main:
            logging.getLogger("train").warning("%s", warning)
    return data


def preprocess_spec(cfg: TrainConfig) -> PreprocessSpec:
    """What export writes into the model: eval resize, crop, and the source's mean/std."""
    source = source_for(cfg.data)
    return PreprocessSpec(
        resize_shorter=cfg.resize_shorter, crop=(cfg.img_size, cfg.img_size), mean=source.mean, std=source.std
    )


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


def make_loaders(cfg: TrainConfig, data: SplitData, spec: PreprocessSpec, info: Dist, device: torch.device) -> Loaders:
    workers = cfg.workers if cfg.workers >= 0 else default_workers(info)
    common: dict[str, Any] = {"batch_size": cfg.batch_size, "num_workers": workers, "pin_memory": device.type == "cuda"}
    gen = torch.Generator().manual_seed(cfg.seed)
    source = source_for(cfg.data)
    train_ds = source.dataset(data, "train", train_transform(spec, cfg.rotation, cfg.hflip, cfg.crop_scale))
    sampler: DistributedSampler | None = (
        DistributedSampler(train_ds, info.world_size, info.rank, shuffle=True, seed=cfg.seed) if info.enabled else None
    )
    # Train workers are not persistent: fresh worker seeds every epoch keep --resume exact.
    train = DataLoader(train_ds, sampler=sampler or RandomSampler(train_ds, generator=gen), generator=gen, **common)

    def shard(split: str) -> DataLoader:
        ds = source.dataset(data, split, eval_transform(spec))
        ds = Subset(ds, range(info.rank, len(ds), info.world_size)) if info.enabled else ds
        return DataLoader(ds, shuffle=False, persistent_workers=workers > 0, **common)

    return Loaders(train, shard("val"), shard("test"), gen, sampler)
