"""What a successful export writes: one checked FP32 file, servable INT8 and FP16 copies, a readable contract."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

from core.contract import METADATA_KEY, parse_contract
from core.imaging import load_image, preprocess
from core.model import load_model
from export.onnx_export import has_dynamic_batch, is_single_file
from export.report import summary
from train.checkpoint import load_checkpoint

pytestmark = [pytest.mark.torch]


def metadata(path: Path) -> str:
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}[METADATA_KEY]


def test_fp32_model_is_one_checked_file_with_a_dynamic_batch(artifact: dict[str, Any]) -> None:
    path = artifact["out"] / "model.onnx"
    onnx.checker.check_model(str(path), full_check=True)
    proto = onnx.load(str(path))
    assert is_single_file(path) and not list(artifact["out"].glob("*.data"))
    assert has_dynamic_batch(proto)
    assert not list(artifact["out"].glob(".export-*")), "the staging folder must be gone"
    assert artifact["report"]["models"]["fp32"]["opset"] == parse_contract(metadata(path)).model["opset"]


def test_model_parity_is_measured_on_the_test_split_at_two_batch_sizes(artifact: dict[str, Any]) -> None:
    parity = parse_contract(metadata(artifact["out"] / "model.onnx")).parity
    assert parity["max_abs_diff"] <= 1e-4 and parity["top1_agreement"] == 1.0
    assert parity["batch_sizes"] == [1, 8]
    assert parity["real_images"] == 10 and "test split" in parity["images_source"]  # 1 test image per class
    assert parity["random_tensors"] == 8 and parity["n"] == 18


def test_preprocess_parity_is_within_one_level_and_counts_bit_exact(artifact: dict[str, Any]) -> None:
    pp = parse_contract(metadata(artifact["out"] / "model.onnx")).parity["preprocess"]
    assert pp["n"] == pp["run_images"] + pp["generated_images"] == 10 + 17
    assert pp["max_levels"] <= 1.0 + 1e-3
    assert isinstance(pp["bit_exact"], int) and 0 <= pp["bit_exact"] <= pp["n"]
    assert pp["top1_agreement"] == 1.0


def test_metadata_round_trips_into_the_service_contract(artifact: dict[str, Any], checkpoint: Path) -> None:
    ckpt = load_checkpoint(checkpoint)
    served = load_model(artifact["out"] / "model.onnx", threads=1).contract
    assert served == parse_contract(metadata(artifact["out"] / "model.onnx"))
    assert list(served.labels) == ckpt["labels"]
    assert served.preprocess.mean == tuple(ckpt["preprocess"]["mean"])
    assert served.preprocess.crop == tuple(ckpt["preprocess"]["crop"])
    assert served.training["split_sha256"] == ckpt["split_sha256"]
    assert served.model["precision"] == "fp32"


def _inputs(checkpoint: Path, contract, n: int = 6) -> np.ndarray:
    files = sorted((checkpoint.parent / "synthetic-data" / "raw-img").rglob("*.jpeg"))[::17][:n]
    return np.stack([preprocess(load_image(f.read_bytes(), "RGB"), contract.preprocess) for f in files])


def test_int8_model_is_servable_and_carries_its_figures(artifact: dict[str, Any], checkpoint: Path) -> None:
    fp32 = load_model(artifact["out"] / "model.onnx", threads=1)
    int8 = load_model(artifact["out"] / "model.int8.onnx", threads=1)
    assert int8.contract.labels == fp32.contract.labels
    assert int8.contract.preprocess == fp32.contract.preprocess
    assert int8.contract.model["precision"] == "int8"
    figures = int8.contract.extra["int8"]
    assert figures["settings"]["per_channel"] is True and figures["settings"]["format"] == "QDQ"
    assert "train-split" in figures["calibration"] and "test-split" in figures["evaluated_on"]
    assert figures["drop_points"] <= 1.0
    assert figures["bytes"]["int8"] < figures["bytes"]["fp32"]
    x = _inputs(checkpoint, fp32.contract)
    assert int8.logits(x).shape == fp32.logits(x).shape == (len(x), len(fp32.contract.labels))
    assert any(n.op_type == "QuantizeLinear" for n in onnx.load(str(int8.path)).graph.node)


def test_fp16_model_keeps_float32_io_and_is_servable(artifact: dict[str, Any], checkpoint: Path) -> None:
    proto = onnx.load(str(artifact["out"] / "model.fp16.onnx"))
    assert all(
        v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT for v in [*proto.graph.input, *proto.graph.output]
    )
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in proto.graph.initializer)
    fp16 = load_model(artifact["out"] / "model.fp16.onnx", threads=1)
    assert fp16.contract.model["precision"] == "fp16"
    check = artifact["report"]["fp16"]
    assert check["ran_on_cpu"] and check["max_rel_diff"] <= check["rtol"]
    x = _inputs(checkpoint, fp16.contract)
    assert fp16.logits(x).dtype == np.float32


def test_report_and_summary(artifact: dict[str, Any]) -> None:
    report = json.loads((artifact["out"] / "export_report.json").read_text())
    assert report["ok"] and set(report["models"]) == {"fp32", "int8", "fp16"}
    text = summary(artifact["report"])
    assert "top-1 agreement 100.00%" in text and "model.int8.onnx" in text and "bit-exact" in text
    assert len(text.splitlines()) <= 24, "the summary must fit on one screen"


def test_every_model_file_has_a_sha256_sidecar_the_service_checks(artifact: dict[str, Any]) -> None:
    from core.checksum import sidecar, verify

    for name in ("model.onnx", "model.int8.onnx", "model.fp16.onnx"):
        path = artifact["out"] / name
        line = sidecar(path).read_text()
        assert line.endswith(f"  {name}\n") and len(line.split()[0]) == 64  # `sha256sum -c` reads it
        assert verify(path) == line.split()[0]
