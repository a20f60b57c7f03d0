"""The walking skeleton end to end: train CLI -> export CLI -> served answer == PyTorch answer."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fastapi.testclient import TestClient  # noqa: E402

from core.imaging import load_image  # noqa: E402
from service.app import create_app  # noqa: E402
from service.settings import Settings  # noqa: E402
from train.checkpoint import load_checkpoint, preprocess_spec, rebuild_model  # noqa: E402
from train.transforms import reference_eval_transform  # noqa: E402

pytestmark = [pytest.mark.torch, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> str:
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("e2e")
    run("-m", "train", "--data", "synthetic", "--out", str(tmp / "run"), "--no-progress")
    out = run("-m", "export", "--checkpoint", str(tmp / "run" / "best.pt"), "--out", str(tmp / "artifact"))
    assert "top-1 agreement 100.00%" in out
    return {"run": tmp / "run", "model": tmp / "artifact" / "model.onnx"}


def torch_probabilities(ckpt_path: Path, image: Path, temperature: float = 1.0) -> tuple[list[str], np.ndarray]:
    """PyTorch's answer, with the temperature export fitted (the served confidence is calibrated)."""
    ckpt = load_checkpoint(ckpt_path)
    x = reference_eval_transform(preprocess_spec(ckpt))(load_image(image.read_bytes(), "RGB"))[None]
    with torch.inference_mode():
        probs = torch.softmax(rebuild_model(ckpt)(x) / temperature, dim=1)[0].numpy()
    return ckpt["labels"], probs


def test_served_answer_equals_pytorch(pipeline: dict[str, Path]) -> None:
    assert not list(pipeline["model"].parent.glob("*.data")), "model.onnx must be one self-contained file"
    images = sorted((pipeline["run"] / "synthetic-data" / "raw-img").rglob("*.jpeg"))[::37]
    settings = Settings(model_path=pipeline["model"], intra_op_threads=1)
    with TestClient(create_app(settings)) as client:
        temperature = client.get("/v1/model").json()["calibration"]["temperature"]
        for image in images:
            labels, probs = torch_probabilities(pipeline["run"] / "best.pt", image, temperature)
            r = client.post(
                "/predict", files={"file": (image.name, image.read_bytes(), "image/jpg")}, params={"top_k": len(labels)}
            )
            assert r.status_code == 200, r.text
            served = {x["label"]: x["score"] for x in r.json()["top_k"]}
            assert r.json()["label"] == labels[int(probs.argmax())]
            np.testing.assert_allclose([served[lab] for lab in labels], probs, atol=2e-6)


def test_model_metadata_carries_the_contract(pipeline: dict[str, Path]) -> None:
    import onnxruntime as ort

    from core.model import read_contract

    contract = read_contract(ort.InferenceSession(str(pipeline["model"]), providers=["CPUExecutionProvider"]))
    ckpt = load_checkpoint(pipeline["run"] / "best.pt")
    assert list(contract.labels) == ckpt["labels"]
    assert contract.training["split_sha256"] == ckpt["split_sha256"]
    assert contract.parity["top1_agreement"] == 1.0 and contract.parity["n"] > 0
    report = json.loads((pipeline["model"].parent / "export_report.json").read_text())["calibration"]
    if contract.calibration is None:  # the demo model may separate its val split perfectly: no T to fit
        assert "gives no optimum" in report["skipped"]
    else:
        assert contract.calibration.ece_after is not None and contract.calibration.ece_before is not None
        assert contract.calibration.ece_after < contract.calibration.ece_before  # on the trained model's val split
