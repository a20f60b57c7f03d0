"""One process or many: the same ``python -m train`` under ``torchrun``.

Distributed mode starts only when ``RANK`` and ``WORLD_SIZE`` are set (torchrun
sets them); NCCL on GPUs, gloo on CPUs. Rank 0 prepares the data and writes
every file; the others wait at a barrier and read what it wrote.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1 or dist.is_initialized()

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device: str) -> Dist:
    """Join the process group when launched by torchrun; otherwise a one-process ``Dist``."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return Dist()
    info = Dist(
        int(os.environ["RANK"]),
        int(os.environ["WORLD_SIZE"]),
        int(os.environ.get("LOCAL_RANK", 0)),
        int(os.environ.get("LOCAL_WORLD_SIZE", 1)),
    )
    use_cuda = torch.cuda.is_available() and not device.startswith("cpu")
    if use_cuda:
        torch.cuda.set_device(info.local_rank)
    if not dist.is_initialized():
        if use_cuda:  # device_id binds NCCL to this rank's GPU (else it guesses from the global rank and may hang)
            dist.init_process_group("nccl", device_id=torch.device("cuda", info.local_rank))
        else:
            dist.init_process_group("gloo")
    return info


def barrier(info: Dist) -> None:
    if info.enabled:
        dist.barrier()


def sum_across(t: torch.Tensor, info: Dist) -> torch.Tensor:
    """Element-wise sum over ranks (counts, loss sums, confusion matrices): exact for integers."""
    if info.enabled:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def teardown(info: Dist) -> None:
    if info.enabled and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


@contextlib.contextmanager
def rank0_first(info: Dist) -> Iterator[None]:
    """Rank 0 runs the block first (downloads, data preparation); the others run it after."""
    if not info.is_main:
        barrier(info)
    yield
    if info.is_main:
        barrier(info)


def sync_buffers(model: torch.nn.Module, info: Dist) -> None:
    """Copy rank 0's buffers (BatchNorm running stats) to every rank, so evaluation uses the saved model."""
    if info.enabled:
        for buf in model.buffers():
            dist.broadcast(buf, src=0)
