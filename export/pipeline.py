"""The export command's steps: rebuild, export, prove parity, quantize, describe, write.

Everything is written into a staging folder inside ``--out`` and moved into
place only when every check passed, so a failed export leaves no model (and no
half-written INT8 file) behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from core.checksum import sidecar, write_sidecar
from core.contract import CalibrationSpec, ModelContract
from core.imaging import image_tensor
from core.runtime import open_session
from export.calibrate import calibrate, reliability_diagram
from export.config import ExportConfig
from export.evaluate import accuracy, agreement, run_batches
from export.fp16 import check_fp16, float32_io, fp16_failures, to_fp16
from export.metadata import contract_from_checkpoint, variant_contract, write_metadata
from export.onnx_export import export_onnx, has_dynamic_batch, is_single_file, opset_of, save_single_file
from export.parity import Parity, compare
from export.preprocess_parity import compare_preprocessing, failures
from export.quantize import SETTINGS, gate, quantize_int8
from export.samples import RunData, Sample, find_run_data, generated_samples, strip_sample
from train.checkpoint import load_checkpoint, rebuild_model
from train.errors import CheckpointError

FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx", "fp16": "model.fp16.onnx"}
PLOTS = ("reliability.png",)
N_GENERATED = 16  # one of each shape in ``samples.GENERATED_SHAPES``


class ExportError(RuntimeError):
    """A check failed: nothing is written."""


class ParityError(ExportError):
    """ONNX disagrees with PyTorch, or serving's preprocessing with training's."""


class AccuracyGateError(ExportError):
    """INT8 lost more accuracy than ``--max-accuracy-drop`` allows."""


def tensors(samples: list[Sample], contract: ModelContract) -> np.ndarray:
    """Encoded files -> (N, C, H, W) exactly as the service computes them."""
    shape = (0, contract.input.channels, contract.input.height, contract.input.width)
    if not samples:
        return np.zeros(shape, np.float32)
    return np.stack([image_tensor(s.data, contract.input.color, contract.preprocess) for s in samples])


def check(parity: Parity, atol: float) -> None:
    if not parity.max_abs_diff <= atol or parity.top1_agreement < 1.0:
        raise ParityError(
            f"ONNX does not match PyTorch: max |diff| {parity.max_abs_diff:.3g} (tolerance {atol:g}), "
            f"top-1 agreement {parity.top1_agreement:.4f} on {parity.n} inputs"
        )


def model_parity(
    model: torch.nn.Module,
    proto: onnx.ModelProto,
    contract: ModelContract,
    real: list[Sample],
    source: str,
    cfg: ExportConfig,
) -> dict[str, Any]:
    """Real (or generated) images the serving way, plus random tensors, at batch 1 and 8."""
    rng = np.random.default_rng(cfg.seed)
    noise = rng.standard_normal((8, contract.input.channels, contract.input.height, contract.input.width))
    x = np.concatenate([tensors(real, contract), noise.astype(np.float32)])
    parity = compare(model, proto.SerializeToString(), x, contract.input.name, batch_sizes=(1, 8))
    check(parity, cfg.atol)
    return {
        **parity.as_dict(),
        "atol": cfg.atol,
        "real_images": len(real),
        "images_source": source,
        "random_tensors": len(noise),
    }


def preprocess_parity(model: torch.nn.Module, contract: ModelContract, real: list[Sample], seed: int) -> dict:
    """Service vs torchvision on the run's images and on generated portrait/odd/grey/RGBA files."""
    generated = [*generated_samples(N_GENERATED, seed + 7), strip_sample(contract.preprocess.resize_shorter, seed=seed)]
    p = compare_preprocessing(model, contract, real + generated)
    problems = failures(p)
    if problems:
        raise ParityError("serving preprocessing does not match torchvision's eval transform: " + "; ".join(problems))
    return {**p.as_dict(), "run_images": len(real), "generated_images": len(generated)}


def labelled(run: RunData, split: str, cfg: ExportConfig, contract: ModelContract) -> tuple[np.ndarray, np.ndarray]:
    """(tensors, labels) of up to ``cfg.temperature_images`` images of ``split``; empty when unlabelled."""
    samples = [s for s in run.samples(split, cfg.temperature_images, cfg.seed) if s.label is not None]
    return tensors(samples, contract), np.array([s.label for s in samples], dtype=np.int64)


def calibration_step(
    model_bytes: bytes, contract: ModelContract, run: RunData, cfg: ExportConfig, stage: Path
) -> tuple[CalibrationSpec | None, dict[str, Any]]:
    """Fit the temperature on the val split, check it on the test split, draw the reliability diagram."""
    if not cfg.calibrate:
        return None, {"skipped": "--no-calibrate: the service reports the raw softmax"}
    x, y = labelled(run, "val", cfg, contract)
    if not len(y):
        return None, {"skipped": f"no labelled validation split ({run.reason}); the service reports the raw softmax"}
    session = open_session(model_bytes)
    logits = run_batches(session, x).logits
    fit = calibrate(logits, y)
    if fit.at_bound:  # NLL keeps falling as T -> 0 or infinity: no temperature is supported by the data
        reason = (
            f"the validation split ({fit.n} images) gives no optimum: T ran to {fit.temperature:.3g} "
            f"(ECE {fit.ece_before:.4f} -> {fit.ece_after:.4f}), e.g. every image is right by a wide margin; "
            "the service reports the raw softmax"
        )
        return None, {"skipped": reason}
    spec = CalibrationSpec(
        temperature=fit.temperature,
        fitted_on=f"validation split ({fit.n} images)",
        n=fit.n,
        bins=fit.bins,
        ece_before=fit.ece_before,
        ece_after=fit.ece_after,
        nll_before=fit.nll_before,
        nll_after=fit.nll_after,
    )
    figures: dict[str, Any] = {**spec.to_dict(), "plot": PLOTS[0]}
    tx, ty = labelled(run, "test", cfg, contract)
    if len(ty):
        figures["test"] = fit.measured_on(run_batches(session, tx).logits, ty)
    title = f"{contract.model.get('name')}: reliability on the validation split ({fit.n} images)"
    reliability_diagram(logits, y, fit, stage / PLOTS[0], title)
    return spec, figures


def int8_step(
    fp32_path: Path,
    dest: Path,
    contract: ModelContract,
    run: RunData,
    cfg: ExportConfig,
    hook: Callable[[onnx.ModelProto], None] | None,
) -> dict[str, Any]:
    """Calibrate, quantize, measure FP32 vs INT8 on the test split, gate; write ``dest`` only if it passes."""
    calib = run.samples("train", cfg.calibration, cfg.seed)
    calib_source = f"{len(calib)} train-split images" if calib else f"{cfg.calibration} generated images (no run data)"
    calib = calib or generated_samples(cfg.calibration, cfg.seed + 1)
    raw = dest.with_name(".int8-unchecked.onnx")
    quantize_int8(fp32_path, raw, tensors(calib, contract), contract.input.name)
    if hook is not None:
        proto = onnx.load(str(raw))
        hook(proto)
        onnx.save_model(proto, str(raw))
    test = run.samples("test", cfg.max_eval_images)
    eval_source = f"{len(test)} test-split images" if test else "generated images (no labelled test split)"
    test = test or generated_samples(64, cfg.seed + 2)
    x = tensors(test, contract)
    labels = np.array([s.label for s in test]) if test[0].label is not None else None
    fp32, int8 = run_batches(open_session(fp32_path), x), run_batches(open_session(raw), x)
    fp32_acc = accuracy(fp32.logits, labels) if labels is not None else None
    int8_acc = accuracy(int8.logits, labels) if labels is not None else None
    agree = agreement(fp32.logits, int8.logits)
    verdict = gate(fp32_acc, int8_acc, agree, cfg.max_accuracy_drop)
    figures = {
        "settings": SETTINGS,
        "calibration": calib_source,
        "evaluated_on": eval_source,
        "fp32_accuracy": fp32_acc,
        "int8_accuracy": int8_acc,
        "top1_agreement": agree,
        "drop_points": verdict.drop,
        "gate_basis": verdict.basis,
        "max_accuracy_drop": cfg.max_accuracy_drop,
        "images_per_s": {"fp32": fp32.images_per_s, "int8": int8.images_per_s, "batch": 8, "threads": os.cpu_count()},
        "bytes": {"fp32": fp32_path.stat().st_size, "int8": raw.stat().st_size},
    }
    if not verdict.passed:
        raise AccuracyGateError(
            f"INT8 refused: {verdict.basis} drop {verdict.drop:.2f} points > {cfg.max_accuracy_drop:g} allowed "
            f"(FP32 {_pct(fp32_acc)}, INT8 {_pct(int8_acc)}, agreement {agree * 100:.2f}%, {eval_source})"
        )
    proto = onnx.load(str(raw))
    write_metadata(proto, variant_contract(contract, "int8", FILES["fp32"], figures))
    save_single_file(proto, dest)
    raw.unlink()
    return figures


def fp16_step(
    proto32: onnx.ModelProto, dest: Path, contract: ModelContract, real: list[Sample], fp32_path: Path, seed: int
) -> dict[str, Any]:
    """Convert with float32 I/O, check it on the CPU against the FP32 ONNX model, write ``dest``."""
    proto = to_fp16(proto32)
    if not float32_io(proto):
        raise ExportError("FP16 conversion changed the model's input/output types")
    x = tensors(real or generated_samples(N_GENERATED, seed + 3), contract)
    result = check_fp16(proto.SerializeToString(), run_batches(open_session(fp32_path), x).logits, x)
    problems = fp16_failures(result)
    if problems:
        raise ParityError("; ".join(problems))
    figures = result.as_dict()
    write_metadata(proto, variant_contract(contract, "fp16", FILES["fp32"], figures))
    save_single_file(proto, dest)
    return figures


def check_data_root(data_root: Path, run: RunData, real: list[Sample]) -> None:
    """An explicit ``--data-root`` that cannot be used is an error, never a silent switch to generated images."""
    if not data_root.is_dir():
        raise ExportError(f"--data-root {data_root}: not a folder; pass the image folder the run was trained on")
    if run.root is None:
        raise ExportError(f"--data-root {data_root} cannot be used: {run.reason}")
    if not real:
        raise ExportError(
            f"--data-root {data_root}: none of the run's test-split files (split.csv) are under it; "
            "pass the folder that was given to `python -m train --data`"
        )


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{v * 100:.2f}%"


def build(cfg: ExportConfig, stage: Path, model_hook: Callable | None, int8_hook: Callable | None) -> dict[str, Any]:
    """Every step, writing into ``stage``; raise on the first failed check."""
    t0 = time.perf_counter()
    ckpt = load_checkpoint(cfg.checkpoint)
    try:
        model = rebuild_model(ckpt)
    except ValueError as exc:  # another architecture's weights, an unknown arch
        raise CheckpointError(f"{cfg.checkpoint}: {exc}") from exc
    contract = contract_from_checkpoint(ckpt, cfg.name or cfg.out.resolve().name, cfg.version)
    proto = export_onnx(model, (contract.input.channels, contract.input.height, contract.input.width), cfg.opset)
    if not has_dynamic_batch(proto):
        raise ExportError("the exported graph has a fixed batch size")
    if model_hook is not None:
        model_hook(model)
    run = find_run_data(ckpt, cfg.checkpoint, cfg.data_root)
    real = run.samples("test", cfg.max_images)
    if cfg.data_root is not None:
        check_data_root(cfg.data_root, run, real)
    source = f"test split ({run.reason})" if real else f"generated ({run.reason})"
    parity = model_parity(model, proto, contract, real or generated_samples(N_GENERATED, cfg.seed), source, cfg)
    parity["preprocess"] = preprocess_parity(model, contract, real, cfg.seed)
    calibration, calibration_figures = calibration_step(proto.SerializeToString(), contract, run, cfg, stage)
    contract = contract.with_updates(
        parity=parity, model={**contract.model, "opset": opset_of(proto)}, calibration=calibration
    )
    write_metadata(proto, contract)
    fp32_path = stage / FILES["fp32"]
    save_single_file(proto, fp32_path)
    onnx.checker.check_model(str(fp32_path), full_check=True)
    report: dict[str, Any] = {
        "ok": True,
        "out": str(cfg.out),
        "checkpoint": str(cfg.checkpoint),
        "arch": ckpt["arch"],
        "labels": list(contract.labels),
        "command": "python -m export " + " ".join(cfg.argv),
        "models": {
            "fp32": {
                "file": FILES["fp32"],
                "bytes": fp32_path.stat().st_size,
                "opset": opset_of(proto),
                "dynamic_batch": True,
                "single_file": is_single_file(fp32_path),
                "checker": "ok",
            }
        },
        "parity": parity,
        "calibration": calibration_figures,
        "data": run.reason,
    }
    if cfg.quantize == "int8":
        report["int8"] = int8_step(fp32_path, stage / FILES["int8"], contract, run, cfg, int8_hook)
        report["models"]["int8"] = {"file": FILES["int8"], "bytes": (stage / FILES["int8"]).stat().st_size}
    if cfg.fp16:
        report["fp16"] = fp16_step(proto, stage / FILES["fp16"], contract, real, fp32_path, cfg.seed)
        report["models"]["fp16"] = {
            "file": FILES["fp16"],
            "bytes": (stage / FILES["fp16"]).stat().st_size,
            "float32_io": True,
        }
    report["seconds"] = time.perf_counter() - t0
    (stage / "export_report.json").write_text(json.dumps(report, indent=2, default=float))
    return report


def commit(stage: Path, out: Path) -> None:
    """Move the staged files into ``out``; drop variants a previous export left that this one did not make.

    Each model goes with its ``.sha256`` sidecar, which the service checks at start.
    """
    for name in FILES.values():
        if (stage / name).exists():
            write_sidecar(stage / name)
    models = [n for name in FILES.values() for n in (name, sidecar(Path(name)).name)]
    for name in models:
        if not (stage / name).exists() and (out / name).exists():
            (out / name).unlink()
    for name in PLOTS:
        if not (stage / name).exists() and (out / name).exists():
            (out / name).unlink()
    for name in [*models, *PLOTS, "export_report.json"]:
        if (stage / name).exists():
            os.replace(stage / name, out / name)


def run_export(
    cfg: ExportConfig,
    model_hook: Callable[[torch.nn.Module], None] | None = None,
    int8_hook: Callable[[onnx.ModelProto], None] | None = None,
) -> dict[str, Any]:
    """Export, check, and write ``model.onnx`` (+ variants) and ``export_report.json``; return the report.

    ``model_hook`` alters the torch model after export and ``int8_hook`` the
    quantized graph before it is measured: tests use them to prove the parity
    check and the accuracy gate can refuse.
    """
    if cfg.quantize not in (None, "int8"):
        raise ValueError(f"--quantize {cfg.quantize!r}: only int8 is supported")
    if cfg.calibration < 1:
        raise ValueError("--calibration must be at least 1 image")
    created = not cfg.out.exists()
    cfg.out.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=cfg.out, prefix=".export-"))
    ok = False
    try:
        report = build(cfg, stage, model_hook, int8_hook)
        commit(stage, cfg.out)
        ok = True
        return report
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        if not ok and created and not any(cfg.out.iterdir()):
            cfg.out.rmdir()
