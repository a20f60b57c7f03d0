"""``python -m export --checkpoint runs/demo/best.pt --out artifacts/demo``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from export.pipeline import ExportConfig, ParityError, run_export, summary


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m export", description="Export a checkpoint to a served-ready ONNX file.")
    p.add_argument("--checkpoint", type=Path, required=True, help="best.pt written by `python -m train`")
    p.add_argument("--out", type=Path, required=True, help="artifact folder; model.onnx is written here")
    p.add_argument("--name", help="model name in the metadata (default: the --out folder name)")
    p.add_argument("--version", default="1", help="model version in the metadata")
    p.add_argument("--atol", type=float, default=1e-4, help="max |logit difference| allowed vs PyTorch")
    p.add_argument("--max-images", type=int, default=32, help="test-split images used for parity")
    p.add_argument("--opset", type=int, help="ONNX opset (default: the exporter's)")
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = get_parser().parse_args(argv)
    try:
        report = run_export(ExportConfig(**vars(args)))
    except (ParityError, FileNotFoundError, ValueError) as exc:
        print(f"export failed: {exc}", file=sys.stderr)
        return 1
    print(summary(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
