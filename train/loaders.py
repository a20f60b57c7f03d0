"""Data sources -> datasets -> DataLoaders, for one process or one torchrun rank.

Shuffling is reseeded from (seed, epoch, rank) at the start of every epoch, so a
run resumed at epoch k sees the same batches as an uninterrupted one. Under
torchrun the training set goes through ``DistributedSampler`` (which pads to
equal shards, harmless for training); the evaluation sets are cut into
unpadded shards ``rank, rank + world, ...`` so summed counts are exact.

Two input paths train (``--loader``): ``cpu``, where workers decode and
augment with Pillow, and ``gpu``, where workers only read bytes and the device
decodes and augments whole batches (``train/batches.py``). Both draw each
sample's augmentation from (seed, epoch, index) (``train/augment.py``), so
workers persist across epochs and ``--resume`` still equals an uninterrupted
run. Validation and test always take the service's rule (``eval_transform``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, Subset

from core.contract import PreprocessSpec
from core.runtime import cpu_quota
from train.augment import EpochSampler, RecipeTransform, SeededSamples, recipe_for
from train.batches import DeviceBatches
from train.config import TrainConfig
from train.data import SplitData
from train.datacheck import check_dataset
from train.distributed import Dist, rank0_first, sum_across
from train.engine import Precision
from train.gpu_augment import BatchAugment
from train.gpu_decode import DEVICE, DecodeCounts, DeviceDecoder, RawImages, collate_raw
from train.sources import source_for
from train.transforms import eval_transform

log = logging.getLogger("train")


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
    """The CPUs this process may use (cgroup quota and affinity), minus one for the training loop itself."""
    return max(0, cpu_quota() // max(info.local_world_size, 1) - 1)


def pick_loader(choice: str, device: torch.device, data: SplitData) -> str:
    """``auto``: the GPU path on CUDA for image folders; the CPU path otherwise.

    ``gpu`` on a machine without CUDA runs the same batched path on the CPU
    (decode and augmentation in the main process): slower than ``cpu`` there,
    but it is how the path is tested without a GPU.
    """
    if choice == "auto":
        return "gpu" if device.type == "cuda" and data.kind == "folder" else "cpu"
    if choice == "gpu" and data.kind != "folder":
        raise ValueError(
            f"--loader gpu decodes image files; --data {data.kind} is not a folder of files: use --loader cpu"
        )
    return choice


@dataclass
class Loaders:
    train: DataLoader | DeviceBatches
    val: DataLoader
    test: DataLoader
    generator: torch.Generator  # the training shuffle (and the main process's seed each epoch)
    sampler: EpochSampler
    kind: str = "cpu"  # which input path trains: "cpu" or "gpu"
    workers: int = 0

    def start_epoch(self, seed: int, epoch: int, rank: int) -> None:
        """Shuffle order and augmentation depend on (seed, epoch, rank) only: resume-safe."""
        self.generator.manual_seed(epoch_seed(seed, epoch, rank))
        self.sampler.set_epoch(epoch)

    def decode_note(self) -> str | None:
        """GPU path: which training images this process decoded with the CPU rule so far, and why; else None."""
        if not isinstance(self.train, DeviceBatches):
            return None
        counts = self.train.counts
        total, on_cpu = sum(counts.values()), {r: n for r, n in counts.items() if r != DEVICE}
        if not on_cpu:
            return None
        reasons = ", ".join(f"{r} {n:,}" for r, n in sorted(on_cpu.items(), key=lambda kv: -kv[1]))
        return f"gpu loader: {sum(on_cpu.values()):,} of {total:,} training images decoded by the CPU rule ({reasons})"

    def summary(self, info: Dist, device: torch.device) -> dict[str, Any]:
        """For report.json: the input path and, on the GPU path, decodes per route summed over ranks (collective)."""
        out: dict[str, Any] = {"kind": self.kind, "workers": self.workers}
        if isinstance(self.train, DeviceBatches):
            counts = sum_across(self.train.decoder.counts.as_tensor().to(device), info).cpu()
            out["decodes"] = DecodeCounts.from_tensor(counts)
        return out

    def describe(self) -> str:
        where = "JPEG decode and augmentation batched on the device" if self.kind == "gpu" else "decode and augment"
        return f"loader {self.kind} ({where}, {self.workers} worker(s) per process)"


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    return seed * 1_000_003 + epoch * 1009 + rank


def make_loaders(cfg: TrainConfig, data: SplitData, spec: PreprocessSpec, info: Dist, prec: Precision) -> Loaders:
    workers = cfg.workers if cfg.workers >= 0 else default_workers(info)
    kind = pick_loader(cfg.loader, prec.device, data)
    if kind == "gpu" and prec.device.type != "cuda" and info.is_main:
        log.warning(
            "--loader gpu on %s: the batched GPU path runs on the CPU (for testing; --loader cpu is faster)",
            prec.device,
        )
    common: dict[str, Any] = {
        "batch_size": cfg.batch_size,
        "num_workers": workers,
        "pin_memory": prec.device.type == "cuda",
        "prefetch_factor": cfg.prefetch if workers > 0 else None,
    }
    gen = torch.Generator().manual_seed(cfg.seed)
    train, sampler = _train_input(cfg, data, spec, info, prec, kind, gen, common)
    source = source_for(cfg.data)

    def shard(split: str, persistent: bool) -> DataLoader:
        ds = source.dataset(data, split, eval_transform(spec))
        ds = Subset(ds, range(info.rank, len(ds), info.world_size)) if info.enabled else ds
        return DataLoader(ds, shuffle=False, persistent_workers=persistent and workers > 0, **common)

    # Validation runs every epoch (its workers persist); test once, at the end.
    return Loaders(train, shard("val", True), shard("test", False), gen, sampler, kind, workers)


def _train_input(
    cfg: TrainConfig,
    data: SplitData,
    spec: PreprocessSpec,
    info: Dist,
    prec: Precision,
    kind: str,
    gen: torch.Generator,
    common: dict[str, Any],
) -> tuple[DataLoader | DeviceBatches, EpochSampler]:
    """The training batches of either path, and the sampler that tells the workers the epoch."""
    recipe = recipe_for(spec, cfg.rotation, cfg.hflip, cfg.crop_scale)
    if kind == "gpu":
        train_ds: Any = RawImages(data.root, data.split_entries("train"), recipe, cfg.seed)
    else:
        transform = RecipeTransform(recipe, spec.mean, spec.std)
        train_ds = SeededSamples(source_for(cfg.data).dataset(data, "train", transform), transform, cfg.seed)
    inner = (
        DistributedSampler(train_ds, info.world_size, info.rank, shuffle=True, seed=cfg.seed)
        if info.enabled
        else RandomSampler(train_ds, generator=gen)
    )
    sampler = EpochSampler(inner)
    # Persistent workers: augmentation is drawn from (seed, epoch, index), never from a worker's RNG, so
    # workers that live across epochs (and a resume) change nothing. The loader's own generator only
    # seeds those unused worker RNGs; it is not the shuffle's, which would then draw differently after a resume.
    loader = DataLoader(
        train_ds,
        sampler=sampler,
        generator=torch.Generator().manual_seed(cfg.seed),
        persistent_workers=common["num_workers"] > 0,
        collate_fn=collate_raw if kind == "gpu" else None,
        **common,
    )
    if kind == "cpu":
        return loader, sampler
    augment = BatchAugment(recipe, spec.mean, spec.std, prec.channels_last)
    return DeviceBatches(loader, DeviceDecoder(prec.device), augment), sampler
