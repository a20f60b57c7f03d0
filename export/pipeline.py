"""The export command's steps: rebuild, export, prove parity, describe, write."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from export.metadata import contract_from_checkpoint, write_metadata
from export.onnx_export import export_onnx, opset_of, save_single_file
from export.parity import Parity, compare
from service.contract import ModelContract
from service.imaging import load_image, preprocess
from train.checkpoint import load_checkpoint, rebuild_model
from train.data import read_manifest

log = logging.getLogger("export")


class ParityError(RuntimeError):
    """ONNX disagrees with PyTorch beyond tolerance: no model is written."""


@dataclass
class ExportConfig:
    checkpoint: Path
    out: Path
    name: str | None = None
    version: str = "1"
    atol: float = 1e-4
    max_images: int = 32
    opset: int | None = None


def sample_files(ckpt: dict[str, Any], checkpoint: Path, limit: int) -> list[Path]:
    """Test-split files from the run's manifest, when the run folder and data are still there."""
    manifest, root = checkpoint.parent / "split.csv", Path(ckpt.get("data_root", ""))
    if not manifest.exists() or not root.is_dir():
        return []
    files = [root / e.file for e in read_manifest(manifest) if e.split == "test"]
    return [f for f in files if f.exists()][:limit]


def parity_inputs(contract: ModelContract, files: list[Path], n_random: int = 8, seed: int = 0) -> np.ndarray:
    """Real images preprocessed the serving way, plus random tensors: (N, C, H, W)."""
    tensors = [preprocess(load_image(f.read_bytes(), contract.input.color), contract.preprocess) for f in files]
    rng = np.random.default_rng(seed)
    shape = (contract.input.channels, contract.input.height, contract.input.width)
    tensors += list(rng.standard_normal((n_random, *shape)).astype(np.float32))
    return np.stack(tensors)


def check(parity: Parity, atol: float) -> None:
    if parity.max_abs_diff > atol or parity.top1_agreement < 1.0:
        raise ParityError(f"ONNX does not match PyTorch: max |diff| {parity.max_abs_diff:.3g} (tolerance {atol:g}), "
                          f"top-1 agreement {parity.top1_agreement:.4f} on {parity.n} inputs")


def run_export(cfg: ExportConfig, model_hook=None) -> dict[str, Any]:
    """Export, check parity, and write ``model.onnx`` + ``export_report.json``; return the report.

    ``model_hook`` may alter the torch model after export (tests use it to prove parity can fail).
    """
    ckpt = load_checkpoint(cfg.checkpoint)
    model = rebuild_model(ckpt)
    contract = contract_from_checkpoint(ckpt, cfg.name or cfg.out.name, cfg.version)
    shape = (contract.input.channels, contract.input.height, contract.input.width)
    proto = export_onnx(model, shape, cfg.opset)
    if model_hook is not None:
        model_hook(model)
    files = sample_files(ckpt, cfg.checkpoint, cfg.max_images)
    parity = compare(model, proto.SerializeToString(), parity_inputs(contract, files), contract.input.name)
    check(parity, cfg.atol)
    contract = contract.with_updates(parity={**parity.as_dict(), "atol": cfg.atol, "real_images": len(files)})
    write_metadata(proto, contract)
    dest = cfg.out / "model.onnx"
    save_single_file(proto, dest)
    report = {"model": str(dest), "bytes": dest.stat().st_size, "opset": opset_of(proto),
              "parity": contract.parity, "labels": list(contract.labels), "checkpoint": str(cfg.checkpoint)}
    (cfg.out / "export_report.json").write_text(json.dumps(report, indent=2))
    return report


def summary(report: dict[str, Any]) -> str:
    p = report["parity"]
    return "\n".join([
        f"wrote {report['model']} ({report['bytes'] / 1e6:.2f} MB, opset {report['opset']}, one file)",
        f"parity vs PyTorch: max |logit diff| {p['max_abs_diff']:.2e} (tolerance {p['atol']:g}), "
        f"top-1 agreement {p['top1_agreement'] * 100:.2f}% on {p['n']} inputs "
        f"({p['real_images']} real images, batch sizes {p['batch_sizes']})",
        f"labels: {', '.join(report['labels'])}",
    ])


def verify_file(path: Path) -> None:
    onnx.checker.check_model(str(path), full_check=True)
