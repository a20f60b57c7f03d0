"""Training throughput: loader-only, model-only and end-to-end images/s, frozen and all layers, in one run.

``python -m bench.train_bench [--loader auto|cpu|gpu|cpu,gpu] [--quick] [--json PATH]`` (``make bench-train``)

It runs the training CLI's own parts: ``prepare_data`` scans and splits a
folder of generated JPEGs (about 400x300 px by default, the size of Animals-10
photos; made once and reused), ``make_loaders`` builds the chosen input path,
and ``train_one_epoch`` drives the model. Three figures per row:

* loader-only: training batches on the device, nothing else (the input path's ceiling);
* model-only: ``train_one_epoch`` on one batch already on the device, repeated (the model's ceiling);
* end-to-end: ``train_one_epoch`` fed by the input path (what ``python -m train`` reaches),
  and its ratio to model-only (1.0: the input path costs nothing).

The model has random weights (``--weights none``): speed does not depend on them.
Warm-up batches (worker start, cuDNN autotuning) are not timed. On a GPU this
is the measure; with ``--quick`` it runs in seconds on a CPU.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sys
import time
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from train.config import parse_config
from train.distributed import Dist
from train.engine import Precision, pick_precision, train_one_epoch
from train.loaders import Loaders, make_loaders, prepare_data, preprocess_spec
from train.models import build_model
from train.run import pick_device
from train.synthetic import make_synthetic, parse_size

Batch = tuple[torch.Tensor, torch.Tensor]
MODES = {"frozen": "frozen features", "all": "all layers"}
QUICK = {"images": 120, "size": "160x120", "arch": "tinycnn", "img_size": 64, "batch_size": 8, "steps": 4, "warmup": 1}
FULL = {
    "images": 4000,
    "size": "400x300",
    "arch": "vgg16",
    "img_size": 224,
    "batch_size": 32,
    "steps": 100,
    "warmup": 10,
}


@dataclass
class Take:
    """The next ``n`` batches of a running stream, as a sized iterable (what ``train_one_epoch`` expects)."""

    stream: Iterator[Batch]
    n: int

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[Batch]:
        return itertools.islice(self.stream, self.n)


def endless(loaders: Loaders, prec: Precision, seed: int) -> Generator[Batch, None, None]:
    """Training batches on the device, epoch after epoch (reseeded as the CLI does), across epoch ends."""
    for epoch in itertools.count(1):
        loaders.start_epoch(seed, epoch, 0)
        for x, y in loaders.train:
            yield prec.batch(x, y)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device) -> float:
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0


def loader_only(stream: Iterator[Batch], steps: int, warmup: int, device: torch.device) -> float:
    for _ in itertools.islice(stream, warmup):
        pass
    n = 0

    def run() -> None:
        nonlocal n
        for _, y in itertools.islice(stream, steps):
            n += len(y)

    elapsed = timed(run, device)
    return n / elapsed


def trainee(arch: str, mode: str, prec: Precision, lr: float = 1e-3) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = build_model(arch, 10, 3, "none", freeze_features=mode == "frozen").to(prec.device)
    if prec.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model, torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)


def steps_per_s(model, batches: Iterable[Batch], n: int, warmup: int, opt, prec: Precision) -> float:
    """Images/s of ``train_one_epoch`` over the next ``n`` batches, after ``warmup`` untimed ones."""
    scaler = torch.amp.GradScaler("cuda") if prec.amp_dtype == torch.float16 else None
    stream = iter(batches)
    train_one_epoch(model, Take(stream, warmup), opt, prec, Dist(), scaler, show_progress=False)
    seen = 0

    def run() -> None:
        nonlocal seen
        seen = train_one_epoch(model, Take(stream, n), opt, prec, Dist(), scaler, show_progress=False).n

    elapsed = timed(run, prec.device)
    return seen / elapsed


def bench_loader(args: argparse.Namespace, loader: str, data_root: Path, model_only: dict[str, float]) -> dict:
    out = args.work / f"run-{loader}"
    argv = ["--data", str(data_root), "--out", str(out), "--arch", args.arch, "--weights", "none"]
    argv += ["--img-size", str(args.img_size), "--batch-size", str(args.batch_size), "--loader", loader]
    argv += ["--workers", str(args.workers), "--device", args.device, "--amp", args.amp, "--no-progress"]
    argv += ["--min-per-class", "0"]  # a speed measure: tiny generated sets are fine
    cfg = parse_config(argv)
    data = prepare_data(cfg, Dist())
    device = pick_device(cfg.device, Dist())
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    prec = pick_precision(device, cfg.amp, cfg.channels_last)
    loaders = make_loaders(cfg, data, preprocess_spec(cfg), Dist(), prec)
    row: dict[str, Any] = {"loader": loaders.kind, "workers": loaders.workers, "device": str(device)}
    stream = endless(loaders, prec, cfg.seed)
    try:
        row["loader_only"] = loader_only(stream, args.steps, args.warmup, device)
        x, y = next(stream)
        for mode in args.modes:
            if mode not in model_only:  # the model's ceiling does not depend on the loader
                model, opt = trainee(args.arch, mode, prec)
                model_only[mode] = steps_per_s(model, itertools.repeat((x, y)), args.steps, args.warmup, opt, prec)
            model, opt = trainee(args.arch, mode, prec)
            e2e = steps_per_s(model, stream, args.steps, args.warmup, opt, prec)
            row[mode] = {"model_only": model_only[mode], "end_to_end": e2e, "ratio": e2e / model_only[mode]}
    finally:
        stream.close()  # stops the GPU path's producer thread before the next loader starts
    if "decodes" in (summary := loaders.summary(Dist(), device)):
        row["decodes"] = summary["decodes"]
    row.update(amp=str(prec.amp_dtype).removeprefix("torch.") if prec.amp_dtype else "off")
    row.update(channels_last=prec.channels_last, device_name=device_name(device))
    return row


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    info = Path("/proc/cpuinfo")
    lines = info.read_text().splitlines() if info.exists() else []
    model = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), platform.machine())
    return f"{model}, {os.cpu_count()} cores"


def rate(v: float) -> str:
    """Whole images/s where that is precise enough (a GPU's thousands), three digits below 100 (a CPU's VGG16)."""
    return f"{v:,.0f}" if v >= 100 else f"{v:.3g}"


def table(result: dict[str, Any]) -> str:
    a = result["args"]
    first = result["rows"][0]
    lines = [
        f"machine: {first['device_name']} ({first['device']}), torch {torch.__version__}, amp {first['amp']}, "
        f"channels_last {first['channels_last']}",
        f"command: {result['command']}",
        f"{a['arch']} (random weights), batch {a['batch_size']}, {a['img_size']} px crops; {a['images']} generated "
        f"JPEGs around {a['size']} px ({result['train_images']} in the training split); "
        f"{a['steps']} timed batches after {a['warmup']} warm-up",
        "",
        "| loader | training | loader-only img/s | model-only img/s | end-to-end img/s | end-to-end / model-only |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        for mode in a["modes"]:
            m = row[mode]
            lines.append(
                f"| {row['loader']} (workers {row['workers']}) | {MODES[mode]} | {rate(row['loader_only'])} | "
                f"{rate(m['model_only'])} | {rate(m['end_to_end'])} | {m['ratio']:.2f} |"
            )
    for row in result["rows"]:
        if "decodes" in row:
            lines.append(f"{row['loader']} loader decodes: {row['decodes']}")
    return "\n".join(lines)


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.train_bench", description=__doc__.splitlines()[0])
    p.add_argument("--loader", default="auto", help="auto, cpu, gpu, or several: cpu,gpu (default auto)")
    p.add_argument(
        "--quick", action="store_true", help="seconds on a CPU: " + ", ".join(f"{k} {v}" for k, v in QUICK.items())
    )
    p.add_argument("--images", type=int, help=f"generated JPEGs (default {FULL['images']})")
    p.add_argument("--size", help=f"their size WxH, each side within +-10%% (default {FULL['size']})")
    p.add_argument("--data", type=Path, help="an image folder to use instead of generated JPEGs")
    p.add_argument("--arch", help=f"model (default {FULL['arch']})")
    p.add_argument("--img-size", type=int, help=f"crop size (default {FULL['img_size']})")
    p.add_argument("--batch-size", type=int, help=f"batch size (default {FULL['batch_size']})")
    p.add_argument("--steps", type=int, help=f"timed batches per figure (default {FULL['steps']})")
    p.add_argument("--warmup", type=int, help=f"untimed batches first (default {FULL['warmup']})")
    p.add_argument("--modes", default="frozen,all", help="frozen, all, or frozen,all (default)")
    p.add_argument("--workers", type=int, default=-1, help="DataLoader workers (default -1: as the CLI)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1...")
    p.add_argument("--amp", default="auto", choices=["auto", "bf16", "fp16", "off"])
    p.add_argument("--work", type=Path, default=Path("runs/bench-train"), help="generated data and run folders")
    p.add_argument("--json", type=Path, help="also write the numbers here")
    return p


def resolve(args: argparse.Namespace) -> argparse.Namespace:
    """Fill unset options from the quick or the full profile; check the lists."""
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    args.loaders = [x.strip() for x in args.loader.split(",") if x.strip()]
    bad = [m for m in args.modes if m not in MODES] + [x for x in args.loaders if x not in ("auto", "cpu", "gpu")]
    if bad or not args.modes or not args.loaders:
        raise ValueError(f"unknown --modes/--loader value(s) {bad}: modes are frozen, all; loaders auto, cpu, gpu")
    parse_size(args.size)
    if min(args.steps, args.images // 10) < 1:
        raise ValueError("--steps must be at least 1 and --images at least 10")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = resolve(get_parser().parse_args(argv))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    root = args.data
    if root is None:
        root = args.work / f"data-{args.images}-{args.size}"
        print(f"data: {args.images} JPEGs around {args.size} px in {root} (generated once)", flush=True)
        make_synthetic(root, per_class=args.images // 10, seed=0, size=parse_size(args.size))
    model_only: dict[str, float] = {}
    rows = [bench_loader(args, loader, root, model_only) for loader in args.loaders]
    split = (args.work / f"run-{args.loaders[0]}" / "split.csv").read_text().count(",train,")
    result = {
        "rows": rows,
        "train_images": split,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "command": " ".join(["python -m bench.train_bench", *argv]),
    }
    print(table(result), flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
