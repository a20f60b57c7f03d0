"""Tiny ONNX classifiers built with ``onnx.helper`` (no torch), carrying a real contract.

The RGB model averages each channel over the image and scores it, so a red
image is "red": predictions are known in advance and tests can assert them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from core.contract import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    METADATA_KEY,
    CalibrationSpec,
    InputSpec,
    ModelContract,
    OutputSpec,
    PreprocessSpec,
)


def rgb_contract(size: int = 32, labels: tuple[str, ...] = ("red", "green", "blue")) -> ModelContract:
    return ModelContract(
        labels=labels,
        input=InputSpec("input", "RGB", size, size),
        preprocess=PreprocessSpec(
            resize_shorter=round(size * 256 / 224), crop=(size, size), mean=IMAGENET_MEAN, std=IMAGENET_STD
        ),
        output=OutputSpec("logits"),
        model={"name": "tiny-rgb", "arch": "channel-mean", "version": "7", "created": "2026-01-01T00:00:00+00:00"},
        training={"val_accuracy": None, "test_accuracy": None, "split_sha256": None},
        parity={"max_abs_diff": 0.0, "top1_agreement": 1.0, "n": 0},
    )


def gray_contract(size: int = 28) -> ModelContract:
    return ModelContract(
        labels=("dark", "light"),
        input=InputSpec("input", "L", size, size),
        preprocess=PreprocessSpec(resize_shorter=size, crop=(size, size), mean=(0.5,), std=(0.25,)),
        output=OutputSpec("logits"),
        model={"name": "tiny-gray", "arch": "channel-mean", "version": "1", "created": "2026-01-01T00:00:00+00:00"},
    )


def channel_mean_model(contract: ModelContract, weight: np.ndarray, bias: np.ndarray) -> onnx.ModelProto:
    """input (N, C, H, W) -> GlobalAveragePool -> Flatten -> Gemm(weight (C, K)) -> logits (N, K)."""
    c, k = contract.input.channels, len(contract.labels)
    h, w = contract.input.height, contract.input.width
    nodes = [
        helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("Gemm", ["flat", "W", "B"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", c, h, w])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", k])],
        initializer=[
            numpy_helper.from_array(weight.astype(np.float32), "W"),
            numpy_helper.from_array(bias.astype(np.float32), "B"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    model.metadata_props.add(key=METADATA_KEY, value=contract.to_json())
    onnx.checker.check_model(model)
    return model


def write_rgb_model(path: Path, size: int = 32) -> Path:
    contract = rgb_contract(size)
    onnx.save_model(channel_mean_model(contract, np.eye(3) * 4.0, np.zeros(3)), str(path))
    return path


def write_calibrated_rgb_model(path: Path, temperature: float, size: int = 32) -> Path:
    """The RGB model with a fitted temperature in its metadata, as export writes it."""
    fit = CalibrationSpec(temperature, fitted_on="validation split (test)", n=100, ece_before=0.2, ece_after=0.05)
    contract = rgb_contract(size).with_updates(calibration=fit)
    onnx.save_model(channel_mean_model(contract, np.eye(3) * 4.0, np.zeros(3)), str(path))
    return path


def write_gray_model(path: Path, size: int = 28) -> Path:
    contract = gray_contract(size)
    onnx.save_model(channel_mean_model(contract, np.array([[-4.0, 4.0]]), np.zeros(2)), str(path))
    return path


def spatial_contract(size: int = 32, version: str = "1") -> ModelContract:
    return ModelContract(
        labels=tuple(f"class{i}" for i in range(6)),
        input=InputSpec("input", "RGB", size, size),
        preprocess=PreprocessSpec(
            resize_shorter=round(size * 256 / 224), crop=(size, size), mean=IMAGENET_MEAN, std=IMAGENET_STD
        ),
        output=OutputSpec("logits"),
        model={"name": "tiny-spatial", "arch": "grid-pool", "version": version, "created": "2026-01-01T00:00:00+00:00"},
    )


def write_spatial_model(path: Path, size: int = 32, grid: int = 4, seed: int = 0, version: str = "1") -> Path:
    """A model that sees where colours are (a grid x grid pooled map), so rotations change its answer.

    input (N, 3, H, W) -> AveragePool(H/grid) -> Flatten (3*grid*grid) -> Gemm -> logits (N, 6).
    """
    contract = spatial_contract(size, version)
    k, cell = len(contract.labels), size // grid
    rng = np.random.default_rng(seed)
    nodes = [
        helper.make_node("AveragePool", ["input"], ["pooled"], kernel_shape=[cell, cell], strides=[cell, cell]),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("Gemm", ["flat", "W", "B"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_spatial",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", k])],
        initializer=[
            numpy_helper.from_array(rng.normal(0, 1, (3 * grid * grid, k)).astype(np.float32), "W"),
            numpy_helper.from_array(np.zeros(k, np.float32), "B"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    model.metadata_props.add(key=METADATA_KEY, value=contract.to_json())
    onnx.checker.check_model(model)
    onnx.save_model(model, str(path))
    return path
