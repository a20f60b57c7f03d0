"""``python -m export --checkpoint runs/demo/best.pt --out artifacts/demo [--quantize int8] [--fp16]``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from export.pipeline import ExportConfig, ExportError, run_export
from export.report import summary


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m export", description="Export a checkpoint to a served-ready ONNX file.")
    p.add_argument("--checkpoint", type=Path, required=True, help="best.pt written by `python -m train`")
    p.add_argument("--out", type=Path, required=True, help="artifact folder; model.onnx is written here")
    p.add_argument("--name", help="model name in the metadata (default: the --out folder name)")
    p.add_argument("--version", default="1", help="model version in the metadata")
    p.add_argument("--atol", type=float, default=1e-4, help="max |logit difference| allowed vs PyTorch")
    p.add_argument("--max-images", type=int, default=32, help="test-split images used for the parity checks")
    p.add_argument("--opset", type=int, help="ONNX opset (default: the exporter's)")
    p.add_argument("--data-root", type=Path, help="image folder of the run, if it moved since training")
    p.add_argument("--quantize", choices=["int8"], help="also write model.int8.onnx (static QDQ, gated on accuracy)")
    p.add_argument("--calibration", type=int, default=200, help="train-split images used to calibrate INT8")
    p.add_argument("--max-accuracy-drop", type=float, default=1.0,
                   help="refuse INT8 if its test accuracy is more than this many points below FP32")
    p.add_argument("--max-eval-images", type=int, default=0, help="test images for the INT8 gate (0: all)")
    p.add_argument("--fp16", action="store_true", help="also write model.fp16.onnx for GPUs (float32 I/O)")
    p.add_argument("--seed", type=int, default=0)
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    argv = sys.argv[1:] if argv is None else argv
    args = get_parser().parse_args(argv)
    try:
        report = run_export(ExportConfig(**vars(args), argv=list(argv)))
    except (ExportError, FileNotFoundError, ValueError) as exc:
        print(f"export failed, nothing written: {exc}", file=sys.stderr)
        return 1
    print(summary(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
