"""Export configuration: one typed dataclass whose fields carry their defaults and help text."""

from __future__ import annotations

import argparse
from dataclasses import MISSING, dataclass, field
from pathlib import Path

from core.cli import add_fields, opt
from core.failures import prog_name


@dataclass
class ExportConfig:
    checkpoint: Path = opt(MISSING, "best.pt written by `python -m train`")
    out: Path = opt(MISSING, "artifact folder; model.onnx is written here")
    name: str | None = opt(None, "model name in the metadata (default: the --out folder name)")
    version: str = opt("1", "model version in the metadata")
    atol: float = opt(1e-4, "max |logit difference| allowed vs PyTorch")
    max_images: int = opt(32, "test-split images used for the parity checks")
    opset: int | None = opt(None, "ONNX opset (default: the exporter's)")
    data_root: Path | None = opt(None, "image folder of the run, if it moved since training")
    quantize: str | None = opt(None, "also write model.int8.onnx (static QDQ, gated on accuracy)", choices=["int8"])
    calibration: int = opt(200, "train-split images used to calibrate INT8")
    max_accuracy_drop: float = opt(1.0, "refuse INT8 if its test accuracy is more than this many points below FP32")
    max_eval_images: int = opt(0, "test images for the INT8 gate; 0 = the whole test split")
    fp16: bool = opt(False, "also write model.fp16.onnx for GPUs (float32 I/O)")
    calibrate: bool = opt(
        True, "keep the raw softmax: fit no temperature on the validation split", flag="--no-calibrate"
    )
    temperature_images: int = opt(1000, "validation (and test) images to fit and check the temperature; 0 = all")
    seed: int = opt(0, "sample order, random parity tensors, generated images")
    argv: list[str] = field(default_factory=list)  # the command line, recorded in the report


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog_name("export"), description="Export a checkpoint to a served-ready ONNX file."
    )
    add_fields(p, ExportConfig)
    p.add_argument("--debug", action="store_true", help="show the full traceback when the command fails (or DEBUG=1)")
    return p
