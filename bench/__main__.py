"""``python -m bench`` (``make bench``): the numbers in docs/benchmarks.md, in one run.

1. ``bench.export_bench``: VGG16 (random weights) FP32 vs INT8 onnxruntime
   throughput, keeping both models (with serving metadata) in ``--keep``;
2. ``bench.serve_bench`` on the FP32 model (with the JPEG draft-mode comparison);
3. ``bench.serve_bench`` on the INT8 model;
4. ``bench.instance_memory`` on both: resident memory per added onnxruntime session.

Run one with ``python -m bench.NAME --help``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

KEEP = Path("artifacts/bench-vgg16")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Measure export (FP32 vs INT8 VGG16) and the service end to end; print the numbers. "
        "Takes several minutes, writes two VGG16 models (random weights, FP32 and INT8, about 71 MB) into --keep, "
        "and starts the service on a loopback port. Asserts nothing.",
        epilog="steps: python -m bench.export_bench --keep DIR; python -m bench.serve_bench --model DIR/model.onnx "
        "--draft; python -m bench.serve_bench --model DIR/model.int8.onnx; python -m bench.instance_memory --model "
        "DIR/model.onnx, then DIR/model.int8.onnx (each has its own --help)",
    )
    p.add_argument("--keep", type=Path, default=KEEP, help=f"folder for the two benchmark models (default {KEEP})")
    p.add_argument("--quick", action="store_true", help="fewer images, requests and seconds (numbers are rougher)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(sys.argv[1:] if argv is None else argv)
    from bench import export_bench, instance_memory, serve_bench  # after --help: importing them loads torch

    quick_serve = ["--requests", "32", "--raw-seconds", "1"] if args.quick else []
    steps = [
        ("export_bench", export_bench.main, ["--keep", str(args.keep), *(["--quick"] if args.quick else [])]),
        ("serve_bench FP32", serve_bench.main, ["--model", str(args.keep / "model.onnx"), "--draft", *quick_serve]),
        ("serve_bench INT8", serve_bench.main, ["--model", str(args.keep / "model.int8.onnx"), *quick_serve]),
        ("instance_memory FP32", instance_memory.main, ["--model", str(args.keep / "model.onnx")]),
        ("instance_memory INT8", instance_memory.main, ["--model", str(args.keep / "model.int8.onnx")]),
    ]
    for title, run, step_argv in steps:
        print(f"\n=== {title}: {' '.join(step_argv)} ===", flush=True)
        if rc := run(step_argv):
            return rc
    return 0


if __name__ == "__main__":
    sys.exit(main())
