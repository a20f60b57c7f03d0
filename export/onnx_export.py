"""torch -> ONNX with a dynamic batch axis, saved as one file with the weights inside."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import onnx
import torch
from onnx.external_data_helper import uses_external_data

from core.contract import INPUT_NAME, OUTPUT_NAME


def export_onnx(model: torch.nn.Module, shape: tuple[int, int, int], opset: int | None = None) -> onnx.ModelProto:
    """Export ``model`` (eval mode) for (N, *shape) inputs; return the in-memory ONNX model.

    The dynamo exporter writes weights as external data; we load it back and
    keep every tensor inside the proto so the artifact is a single file.
    """
    model = model.eval()
    example = torch.randn(2, *shape)  # batch >= 2 so the batch axis stays symbolic
    batch = torch.export.Dim("batch", min=1, max=4096)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp) / "model.onnx"
        kwargs: dict[str, Any] = {"opset_version": opset} if opset else {}
        torch.onnx.export(
            model,
            (example,),
            str(tmp_path),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: batch},),
            dynamo=True,
            external_data=True,
            verbose=False,
            **kwargs,
        )
        proto = onnx.load(str(tmp_path), load_external_data=True)
    onnx.checker.check_model(proto, full_check=True)
    return proto


def save_single_file(proto: onnx.ModelProto, dest: Path) -> None:
    """Write atomically; under 2 GB everything fits inside the protobuf."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".onnx.tmp")
    onnx.save_model(proto, str(tmp), save_as_external_data=False)
    tmp.replace(dest)


def has_dynamic_batch(proto: onnx.ModelProto) -> bool:
    """The first axis of every input and output is symbolic, so one file serves any batch size."""
    return all(v.type.tensor_type.shape.dim[0].HasField("dim_param") for v in [*proto.graph.input, *proto.graph.output])


def is_single_file(path: Path) -> bool:
    """No initializer points at an external-data sidecar."""
    proto = onnx.load(str(path), load_external_data=False)
    return not any(uses_external_data(t) for t in proto.graph.initializer)


def opset_of(proto: onnx.ModelProto) -> int:
    return next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
