"""Memory per inference instance: resident memory as onnxruntime sessions of one model are added.

    python -m bench.instance_memory --model artifacts/NAME/model.onnx [--sessions 3] [--batch 8]

Each session is opened as the service opens its instances, then runs every
batch size from 1 to ``--batch``, as an instance does over time under load (its
arena grows with the batches it has run, and keeps that memory). The first session also pays for onnxruntime itself; the
delta per added session is what one more instance (or the latency session)
costs. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from core.model import LoadedModel, load_model
from core.runtime import memory_mb


def add_session(path: Path, threads: int, batch: int) -> tuple[LoadedModel, float, float]:
    """Open one more session; resident MB added by opening it, and by running batches 1 .. ``batch``."""
    before = memory_mb(default=0.0)
    model = load_model(path, threads)
    opened = memory_mb(default=0.0)
    for n in range(1, batch + 1):
        model.logits(np.zeros((n, *model.input_shape), dtype=np.float32))
    return model, opened - before, memory_mb(default=0.0) - before


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.instance_memory", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, required=True, help="ONNX file written by export")
    p.add_argument("--sessions", type=int, default=3, help="sessions to add, one after the other")
    p.add_argument("--threads", type=int, default=1, help="intra-op threads per session")
    p.add_argument("--batch", type=int, default=8, help="largest batch each session runs (MAX_BATCH_SIZE)")
    args = p.parse_args(argv)
    if not args.model.is_file():
        print(f"instance_memory: no model at {args.model}")
        return 1
    start = memory_mb(default=0.0)
    print(f"model {args.model} ({args.model.stat().st_size / 1e6:.1f} MB), process at {start:.0f} MB resident")
    print(f"| session | opened: + MB | after batches 1..{args.batch}: + MB | process MB |")
    print("|---:|---:|---:|---:|")
    keep, added = [], []
    for i in range(1, args.sessions + 1):
        model, opened, total = add_session(args.model, args.threads, args.batch)
        keep.append(model)
        added.append(total)
        print(f"| {i} | {opened:.0f} | {total:.0f} | {memory_mb(default=0.0):.0f} |", flush=True)
    if len(added) > 1:
        print(f"\neach added session: {np.mean(added[1:]):.0f} MB (mean of sessions 2..{len(added)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
