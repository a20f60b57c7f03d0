"""Model files a newcomer might point MODEL_PATH at by mistake, and a good one that says what it is."""

from __future__ import annotations

import io
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from core.contract import METADATA_KEY, ModelContract
from tests.service.modelgen import channel_mean_model, rgb_contract


def _graph(k_out: int, width: int | str, contract: ModelContract | None) -> onnx.ModelProto:
    """channel-mean classifier with ``k_out`` real outputs, declared width ``width``, metadata ``contract``."""
    nodes = [
        helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("Gemm", ["flat", "W", "B"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 32, 32])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", width])],
        initializer=[
            numpy_helper.from_array(np.ones((3, k_out), np.float32), "W"),
            numpy_helper.from_array(np.zeros(k_out, np.float32), "B"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    if contract is not None:
        model.metadata_props.add(key=METADATA_KEY, value=contract.to_json())
    return model


def write_without_metadata(path: Path) -> Path:
    onnx.save_model(_graph(3, 3, None), str(path))
    return path


def write_label_mismatch(path: Path, symbolic: bool = False) -> Path:
    """Four labels in the metadata, three scores out; ``symbolic``: the graph does not state its width."""
    contract = rgb_contract(labels=("red", "green", "blue", "violet"))
    onnx.save_model(_graph(3, "classes" if symbolic else 3, contract), str(path))
    return path


def write_described(path: Path, precision: str = "int8", opset: int = 17) -> Path:
    """The RGB test model with the facts export records: precision and opset."""
    base = rgb_contract()
    contract = replace(base, model={**base.model, "precision": precision, "opset": opset})
    onnx.save_model(channel_mean_model(contract, np.eye(3) * 4.0, np.zeros(3)), str(path))
    return path


def write_torch_like_checkpoint(path: Path) -> Path:
    """What ``torch.save`` writes: a zip archive holding a pickle."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
    path.write_bytes(buf.getvalue())
    return path
