"""The service refuses, at start, every model it could not answer for; each was a 500, a wrong answer or a 400.

The lifespan raises, so the app never reports ready; ``python -m service``
exits non-zero (checked once, in a subprocess).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
from fastapi.testclient import TestClient
from onnx import TensorProto, helper

from core.checksum import file_sha256, sidecar, write_sidecar
from core.contract import METADATA_KEY, ModelContract
from core.errors import ContractError
from service.app import create_app
from tests.service.conftest import make_settings
from tests.service.modelgen import channel_mean_model, rgb_contract

ROOT = Path(__file__).resolve().parents[2]


def save(path: Path, contract: ModelContract, outputs: int = 3, weight: np.ndarray | None = None) -> Path:
    """The tiny RGB model with this contract written into it, unchecked (the service must do the checking)."""
    w = np.eye(3, outputs) * 4.0 if weight is None else weight
    model = channel_mean_model(replace(contract, labels=tuple(f"c{i}" for i in range(outputs))), w, np.zeros(outputs))
    for prop in list(model.metadata_props):
        model.metadata_props.remove(prop)
    model.metadata_props.add(key=METADATA_KEY, value=contract.to_json())
    onnx.save_model(model, str(path))
    return path


def refused(path: Path, **settings: object) -> str:
    with pytest.raises(Exception) as info, TestClient(create_app(make_settings(path, **settings))):
        pass
    assert isinstance(info.value, ContractError | FileNotFoundError), repr(info.value)
    return str(info.value)


BASE = rgb_contract()


@pytest.mark.parametrize(
    ("contract", "outputs", "words"),
    [
        (replace(BASE, labels=("red", "green")), 3, "2 labels but the model outputs 3"),  # was an IndexError
        (replace(BASE, labels=("red", "green", "blue", "pink")), 3, "4 labels but the model outputs 3"),  # misreported
        (replace(BASE, preprocess=replace(BASE.preprocess, resize_shorter=0)), 3, "resize_shorter"),
        (replace(BASE, labels=("red", "red", "blue")), 3, "unique"),
        (replace(BASE, output=replace(BASE.output, kind="scores")), 3, "output.kind"),
    ],
)
def test_inconsistent_models_do_not_start(tmp_path: Path, contract: ModelContract, outputs: int, words: str) -> None:
    assert words in refused(save(tmp_path / "model.onnx", contract, outputs))


def test_probabilities_that_are_not_probabilities_do_not_start(tmp_path: Path) -> None:
    contract = replace(BASE, output=replace(BASE.output, kind="probabilities"))
    assert "not probabilities" in refused(save(tmp_path / "model.onnx", contract))  # raw logits: negative "scores"


def test_a_model_with_nan_weights_does_not_start(tmp_path: Path) -> None:
    path = save(tmp_path / "model.onnx", BASE, weight=np.full((3, 3), np.nan))
    assert "NaN" in refused(path)


def test_a_fixed_batch_graph_does_not_start_with_micro_batching(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "fixed",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    model.metadata_props.add(key=METADATA_KEY, value=BASE.to_json())
    onnx.save_model(model, str(tmp_path / "model.onnx"))
    assert "batch of 2" in refused(tmp_path / "model.onnx")
    with TestClient(create_app(make_settings(tmp_path / "model.onnx", max_batch_size=1))) as c:
        assert c.get("/readyz").status_code == 200  # served one image at a time, it is fine


def test_flipped_bits_are_refused_by_the_sha256_export_wrote(tmp_path: Path) -> None:
    path = save(tmp_path / "model.onnx", BASE)
    write_sidecar(path)
    with TestClient(create_app(make_settings(path))) as c:
        assert c.get("/readyz").status_code == 200
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01  # one bit, somewhere in the weights
    path.write_bytes(bytes(raw))
    assert "does not match its sha256" in refused(path)
    assert "MODEL_SHA256" in refused(path, model_sha256="0" * 64)
    assert "not a sha256" in refused(path, model_sha256="abc")
    sidecar(path).write_text("garbage\n")
    assert "does not hold a sha256" in refused(path)
    with TestClient(create_app(make_settings(path, model_sha256=file_sha256(path)))) as c:  # explicit wins
        assert c.get("/readyz").status_code == 200


def test_python_m_service_exits_non_zero_on_a_corrupt_model(tmp_path: Path) -> None:
    path = save(tmp_path / "model.onnx", BASE)
    write_sidecar(path)
    raw = path.read_bytes()
    weight = raw.index(np.float32(4.0).tobytes())  # a weight: the file still loads, only its bytes changed
    path.write_bytes(raw[:weight] + np.float32(4.5).tobytes() + raw[weight + 4 :])
    env = {**os.environ, "MODEL_PATH": str(path), "PORT": "0", "HOST": "127.0.0.1", "LOG_LEVEL": "warning"}
    cmd = [sys.executable, "-m", "service"]
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "does not match its sha256" in out.stderr
