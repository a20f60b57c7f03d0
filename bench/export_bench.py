"""FP32 vs INT8 VGG16 on this machine's CPU: images/s at batch 1 and 8, top-1 agreement, file sizes.

``python -m bench.export_bench [--quick] [--json PATH]``

The model is the reference architecture (VGG16, GAP -> 256 -> 10 head) with
random weights, so nothing is downloaded. Speed does not depend on the weights;
agreement does: a random network's top-1 is a weak test of INT8 accuracy
(the export command's gate on the test split is the real one).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch

from core.contract import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    INPUT_NAME,
    OUTPUT_NAME,
    InputSpec,
    ModelContract,
    OutputSpec,
    PreprocessSpec,
)
from core.imaging import image_tensor
from core.runtime import open_session
from export.evaluate import agreement, run_batches, throughput
from export.onnx_export import export_onnx, save_single_file
from export.quantize import SETTINGS, quantize_int8
from export.samples import generated_samples
from train.models import build_model

SPEC = PreprocessSpec(resize_shorter=256, crop=(224, 224), mean=IMAGENET_MEAN, std=IMAGENET_STD)


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")),
        platform.processor() or "unknown",
    )
    flags = next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags")), [])
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "avx512_vnni": "avx512_vnni" in flags,
        "onnxruntime": ort.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def images(n: int, seed: int) -> np.ndarray:
    return np.stack([image_tensor(s.data, "RGB", SPEC) for s in generated_samples(n, seed)])


def build_models(workdir: Path, calibration: int, seed: int) -> tuple[Path, Path, dict[str, float]]:
    """Export VGG16 (random weights) to FP32 ONNX and quantize it; return both paths and step times."""
    torch.manual_seed(seed)
    model = build_model("vgg16", 10, weights="none", freeze_features=True).eval()
    fp32, int8 = workdir / "vgg16.onnx", workdir / "vgg16.int8.onnx"
    t0 = time.perf_counter()
    save_single_file(export_onnx(model, (3, 224, 224)), fp32)
    t1 = time.perf_counter()
    quantize_int8(fp32, int8, images(calibration, seed + 1), INPUT_NAME)
    return fp32, int8, {"export_s": t1 - t0, "quantize_s": time.perf_counter() - t1}


def measure(fp32: Path, int8: Path, n_eval: int, min_seconds: float, seed: int) -> dict[str, Any]:
    x = images(n_eval, seed + 2)  # not the calibration images
    s32, s8 = open_session(fp32), open_session(int8)
    l32, l8 = run_batches(s32, x).logits, run_batches(s8, x).logits
    result: dict[str, Any] = {
        "top1_agreement": agreement(l32, l8),
        "eval_images": n_eval,
        "distinct_fp32_top1": int(len(set(l32.argmax(1).tolist()))),
        "bytes": {"fp32": fp32.stat().st_size, "int8": int8.stat().st_size},
        "batches": {},
    }
    for batch in (1, 8):
        a = throughput(s32, x, batch, min_seconds=min_seconds, min_iters=2)
        b = throughput(s8, x, batch, min_seconds=min_seconds, min_iters=2)
        result["batches"][batch] = {"fp32_images_per_s": a, "int8_images_per_s": b, "speedup": b / a}
    return result


def table(r: dict[str, Any]) -> str:
    m = r["machine"]
    lines = [
        f"machine: {m['cpu']}, {m['cores']} cores, avx512_vnni={m['avx512_vnni']}, onnxruntime {m['onnxruntime']}",
        f"command: {r['command']}",
        f"VGG16 (random weights, reference head), 224x224, threads={m['cores']}; "
        f"export {r['times']['export_s']:.0f}s, quantize {r['times']['quantize_s']:.0f}s "
        f"(calibration: {r['calibration']} generated images)",
        "batch | FP32 img/s | INT8 img/s | INT8/FP32",
        "------|-----------:|-----------:|---------:",
    ]
    for batch, b in r["batches"].items():
        lines.append(
            f"{batch:>5} | {b['fp32_images_per_s']:10.1f} | {b['int8_images_per_s']:10.1f} | {b['speedup']:8.2f}x"
        )
    lines += [
        f"size: FP32 {r['bytes']['fp32'] / 1e6:.1f} MB, INT8 {r['bytes']['int8'] / 1e6:.1f} MB",
        f"top-1 agreement FP32 vs INT8: {r['top1_agreement'] * 100:.1f}% on {r['eval_images']} generated images "
        f"({r['distinct_fp32_top1']} distinct FP32 classes; random weights make this a weak test)",
        "target (issue 4): INT8 >= 3x FP32, agreement >= 99%",
    ]
    return "\n".join(lines)


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.export_bench", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer images and shorter timing (about a minute)")
    p.add_argument("--calibration", type=int, help="generated calibration images (default 32, quick 16)")
    p.add_argument("--eval-images", type=int, help="generated images for agreement (default 64, quick 16)")
    p.add_argument("--min-seconds", type=float, help="timing per (model, batch) (default 5, quick 1.5)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, help="also write the numbers here")
    p.add_argument(
        "--keep",
        type=Path,
        help="save both models, with serving metadata, into this folder "
        "(e.g. for python -m bench.serve_bench --model DIR/model.onnx)",
    )
    return p


def keep_servable(fp32: Path, int8: Path, dest: Path) -> None:
    """Copy both models into ``dest`` with an ``image_classifier`` contract so the service can load them."""
    import onnx

    from export.metadata import write_metadata
    from train.labels import ANIMALS10

    dest.mkdir(parents=True, exist_ok=True)
    for src, name, precision in ((fp32, "model.onnx", "fp32"), (int8, "model.int8.onnx", "int8")):
        proto = onnx.load(str(src))
        contract = ModelContract(
            labels=tuple(ANIMALS10.values()),
            input=InputSpec(INPUT_NAME, "RGB", 224, 224),
            preprocess=SPEC,
            output=OutputSpec(OUTPUT_NAME),
            model={"name": f"vgg16-random-{precision}", "arch": "vgg16", "version": "bench", "precision": precision},
        )
        write_metadata(proto, contract)
        save_single_file(proto, dest / name)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = get_parser().parse_args(argv)
    calibration = args.calibration or (16 if args.quick else 32)
    n_eval = args.eval_images or (16 if args.quick else 64)
    min_seconds = args.min_seconds or (1.5 if args.quick else 5.0)
    with tempfile.TemporaryDirectory() as tmp:
        fp32, int8, times = build_models(Path(tmp), calibration, args.seed)
        result = measure(fp32, int8, n_eval, min_seconds, args.seed)
        if args.keep:
            keep_servable(fp32, int8, args.keep)
    result.update(
        machine=machine(),
        times=times,
        calibration=calibration,
        quantization=SETTINGS,
        command=" ".join(["python -m bench.export_bench", *argv]),
    )
    print(table(result), flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
