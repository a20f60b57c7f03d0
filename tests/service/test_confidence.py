"""Calibrated confidence and "unknown": the temperature from the metadata, MIN_CONFIDENCE at its edges."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from core.contract import CalibrationSpec, parse_contract
from core.errors import ContractError
from core.imaging import image_tensor
from core.model import softmax
from core.runtime import open_session
from tests.service.conftest import encode, make_client
from tests.service.modelgen import rgb_contract, write_calibrated_rgb_model

# Reddish but not pure red: the tiny model is far from certain about it.
PINKISH = encode(Image.new("RGB", (48, 48), (200, 120, 140)), "PNG")


@pytest.fixture(scope="module")
def calibrated_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_calibrated_rgb_model(tmp_path_factory.mktemp("calibrated") / "model.onnx", temperature=2.5)


def raw_logits(model_path: Path, data: bytes) -> np.ndarray:
    contract = rgb_contract()
    x = image_tensor(data, "RGB", contract.preprocess)[None]
    (out,) = open_session(model_path, 1).run(None, {"input": x})
    return out[0]


def scores(body: dict) -> dict[str, float]:
    return {x["label"]: x["score"] for x in body["top_k"]}


def test_the_temperature_from_the_metadata_is_applied(calibrated_path: Path, rgb_model_path: Path) -> None:
    logits = raw_logits(calibrated_path, PINKISH)
    for path, temperature in [(calibrated_path, 2.5), (rgb_model_path, 1.0)]:
        with make_client(path) as c:
            body = c.post("/predict", content=PINKISH, params={"top_k": 3}).json()
            expected = softmax(logits / temperature)
            got = scores(body)
            assert [got[label] for label in ("red", "green", "blue")] == pytest.approx(expected, abs=1e-6)
            assert body["calibrated"] is (temperature != 1.0)
            info = c.get("/v1/model").json()["calibration"]
            assert info["temperature"] == temperature and info["calibrated"] is (temperature != 1.0)
    assert info["figures"] == {}  # a model exported before calibration existed still serves, at temperature 1


def test_model_description_shows_calibration_and_threshold(calibrated_path: Path) -> None:
    with make_client(calibrated_path, min_confidence=0.6) as c:
        m = c.get("/v1/model").json()
    assert m["calibration"]["figures"]["ece_before"] == 0.2 and m["calibration"]["figures"]["ece_after"] == 0.05
    assert m["calibration"]["figures"]["fitted_on"] == "validation split (test)"
    assert m["serving"]["min_confidence"] == 0.6 and m["serving"]["url_input"] is False


@pytest.fixture(scope="module")
def client(calibrated_path: Path) -> Iterator[TestClient]:
    with make_client(calibrated_path, min_confidence=0.99) as c:  # a strict default, overridden per request
        yield c


def test_min_confidence_edges(client: TestClient) -> None:
    base = client.post("/predict", content=PINKISH, params={"min_confidence": 0}).json()
    c = base["confidence"]
    assert 0.4 < c < 0.99 and base["label"] == "red" and base["unknown"] is False
    at = client.post("/predict", content=PINKISH, params={"min_confidence": c}).json()
    assert at["label"] == "red" and at["unknown"] is False  # equal to the threshold is not below it
    above = client.post("/predict", content=PINKISH, params={"min_confidence": round(c + 1e-6, 6)}).json()
    assert above["label"] is None and above["unknown"] is True
    assert above["confidence"] == c and above["top_k"] == base["top_k"]  # the best guesses are still listed
    default = client.post("/predict", content=PINKISH).json()  # MIN_CONFIDENCE=0.99 from the settings
    assert default["unknown"] is True and default["label"] is None
    one = client.post("/predict", content=PINKISH, params={"min_confidence": 1}).json()
    assert one["unknown"] is True


def test_min_confidence_applies_per_item_in_a_batch(client: TestClient) -> None:
    red = encode(Image.new("RGB", (48, 48), (255, 0, 0)), "PNG")
    answers = client.post(
        "/predict/batch",
        files=[("files", ("a.png", red)), ("files", ("b.png", PINKISH))],
        params={"min_confidence": 0.9},
    ).json()
    assert [a["unknown"] for a in answers] == [False, True]
    assert answers[0]["label"] == "red" and answers[1]["label"] is None


@pytest.mark.parametrize("value", ["-0.1", "1.5", "abc"])
def test_min_confidence_out_of_range_is_422(client: TestClient, value: str) -> None:
    r = client.post("/predict", content=PINKISH, params={"min_confidence": value})
    assert r.status_code == 422 and "min_confidence" in r.json()["error"]["message"]


def test_contract_calibration_round_trip_and_older_models() -> None:
    fit = CalibrationSpec(1.7, fitted_on="validation split (10 images)", n=10, ece_before=0.3, ece_after=0.1)
    contract = rgb_contract().with_updates(calibration=fit)
    back = parse_contract(contract.to_json())
    assert back.calibration == fit and back.temperature == 1.7
    old = json.loads(rgb_contract().to_json())
    assert "calibration" not in old
    assert parse_contract(json.dumps(old)).temperature == 1.0
    for bad in (0.0, -1.0, math.inf):
        doc = {**old, "calibration": {"temperature": bad}}
        with pytest.raises(ContractError, match="temperature"):
            parse_contract(json.dumps(doc))
