"""Open Inference Protocol v2, called by the real ``tritonclient[http]`` against the real app under uvicorn.

The answers must equal /predict's: same top-1, same probabilities (which /predict rounds to 6 decimals).
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from core.imaging import image_tensor
from service.v2_protocol import serialize_bytes
from tests.service.conftest import make_client, make_settings, serve

tc = pytest.importorskip("tritonclient.http")
from tritonclient.utils import InferenceServerException  # noqa: E402

MODEL = "tiny-spatial"  # six classes with spread-out probabilities, so the comparison means something
LABELS = [f"class{i}" for i in range(6)]


def photo(seed: int, size: tuple[int, int] = (80, 60)) -> bytes:
    """A blotchy random image: each one lands on different classes of the spatial model."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    img = Image.fromarray(small, "RGB").resize(size, Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, "PNG" if seed % 2 else "JPEG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def server(spatial_model_path: Path) -> Iterator[str]:
    with serve(make_settings(spatial_model_path, max_batch_items=16)) as url:
        yield url


@pytest.fixture(scope="module")
def triton(server: str) -> tc.InferenceServerClient:
    return tc.InferenceServerClient(server.removeprefix("http://"))


def predict_probs(server: str, data: bytes) -> np.ndarray:
    """/predict's full distribution for one image, in label order."""
    r = httpx.post(f"{server}/predict", content=data, params={"top_k": len(LABELS)}, timeout=30)
    assert r.status_code == 200, r.text
    scores = {x["label"]: x["score"] for x in r.json()["top_k"]}
    return np.array([scores[label] for label in LABELS])


def bytes_input(images: list[bytes], binary: bool = True) -> tc.InferInput:
    t = tc.InferInput("image", [len(images)], "BYTES")
    if binary:
        t.set_data_from_numpy(np.array(images, dtype=np.object_))
    else:  # JSON: images travel as base64 strings
        t.set_data_from_numpy(np.array([base64.b64encode(b).decode() for b in images], dtype=np.object_), False)
    return t


def test_health_and_metadata(triton: tc.InferenceServerClient) -> None:
    assert triton.is_server_live() and triton.is_server_ready()
    assert triton.is_model_ready(MODEL) and triton.is_model_ready(MODEL, "1")
    assert not triton.is_model_ready("another-model")
    server = triton.get_server_metadata()
    assert {"binary_tensor_data", "classification"} <= set(server["extensions"])
    meta = triton.get_model_metadata(MODEL)
    assert meta["name"] == MODEL and meta["versions"] == ["1"]
    assert {"name": "image", "datatype": "BYTES", "shape": [-1]} in meta["inputs"]
    assert {"name": "input", "datatype": "FP32", "shape": [-1, 3, 32, 32]} in meta["inputs"]
    assert meta["outputs"] == [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 6]}]
    assert triton.get_model_metadata(MODEL, "1") == meta
    with pytest.raises(InferenceServerException) as err:
        triton.get_model_metadata("resnet")
    assert err.value.status() == "404" and "tiny-spatial" in err.value.message()


@pytest.mark.parametrize("n", [1, 8])
@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_encoded_images_match_predict(server: str, triton: tc.InferenceServerClient, n: int, binary: bool) -> None:
    images = [photo(seed) for seed in range(n)]
    out = tc.InferRequestedOutput("probabilities", binary_data=binary)
    result = triton.infer(MODEL, [bytes_input(images, binary)], outputs=[out])
    probs = result.as_numpy("probabilities")
    assert probs.shape == (n, 6) and probs.dtype == np.float32
    expected = np.stack([predict_probs(server, b) for b in images])
    np.testing.assert_allclose(probs, expected, atol=1e-6)
    assert (probs.argmax(1) == expected.argmax(1)).all()
    assert len(set(probs.argmax(1).tolist())) > 1 or n == 1, "the images should not all land on one class"


@pytest.mark.parametrize("n", [1, 8])
def test_fp32_tensors_match_predict(server: str, triton: tc.InferenceServerClient, spatial_model_path: Path, n: int):
    from core.model import read_contract
    from core.runtime import open_session

    contract = read_contract(open_session(spatial_model_path, 1))
    images = [photo(100 + seed) for seed in range(n)]
    x = np.stack([image_tensor(b, "RGB", contract.preprocess) for b in images])
    t = tc.InferInput("input", list(x.shape), "FP32")
    t.set_data_from_numpy(x)
    probs = triton.infer(MODEL, [t], model_version="1").as_numpy("probabilities")
    expected = np.stack([predict_probs(server, b) for b in images])
    np.testing.assert_allclose(probs, expected, atol=1e-6)
    t.set_data_from_numpy(x, binary_data=False)  # and as JSON numbers
    json_probs = triton.infer(MODEL, [t]).as_numpy("probabilities")
    np.testing.assert_allclose(json_probs, probs, atol=1e-7)


def test_classification_extension(server: str, triton: tc.InferenceServerClient) -> None:
    images = [photo(seed) for seed in range(3)]
    out = tc.InferRequestedOutput("probabilities", class_count=3)
    cls = triton.infer(MODEL, [bytes_input(images)], outputs=[out]).as_numpy("probabilities")
    assert cls.shape == (3, 3)
    for row, data in zip(cls, images, strict=True):
        expected = predict_probs(server, data)
        parsed = [item.decode().split(":") for item in row]
        assert [int(i) for _, i, _ in parsed] == list(np.argsort(-expected, kind="stable")[:3])
        assert [label for _, _, label in parsed] == [LABELS[int(i)] for _, i, _ in parsed]
        np.testing.assert_allclose([float(s) for s, _, _ in parsed], np.sort(expected)[::-1][:3], atol=2e-6)


def test_a_bad_image_fails_the_request_and_names_it(triton: tc.InferenceServerClient) -> None:
    images = [photo(seed) for seed in range(8)]
    images[3] = b"<html>not an image</html>"
    with pytest.raises(InferenceServerException) as err:
        triton.infer(MODEL, [bytes_input(images)])
    assert err.value.status() == "415" and "element 3" in err.value.message()
    images[3] = photo(4)[: len(photo(4)) // 2]  # a truncated JPEG
    with pytest.raises(InferenceServerException) as err:
        triton.infer(MODEL, [bytes_input(images)])
    assert err.value.status() == "400" and "element 3" in err.value.message()
    assert triton.infer(MODEL, [bytes_input(images[:3])]).as_numpy("probabilities").shape == (3, 6)  # still serving


# Refusals, checked on the raw protocol: each is {"error": "<message>"} with a status.


@pytest.fixture(scope="module")
def raw(spatial_model_path: Path) -> Iterator[TestClient]:
    with make_client(spatial_model_path, max_batch_items=4, api_key="k3y") as c:
        c.headers["X-API-Key"] = "k3y"
        yield c


def infer_json(client: TestClient, doc: dict, **kw: object) -> httpx.Response:
    return client.post(f"/v2/models/{MODEL}/infer", content=json.dumps(doc), **kw)  # type: ignore[arg-type]


def image_doc(n: int = 1) -> dict:
    data = [base64.b64encode(photo(s)).decode() for s in range(n)]
    return {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [n], "data": data}]}


@pytest.mark.parametrize(
    ("doc", "status", "words"),
    [
        ({"inputs": []}, 400, '{"inputs"'),
        ({"inputs": [{"name": "image", "datatype": "BYTES"}]}, 400, "lacks shape"),
        ({"inputs": [{"name": "pixels", "datatype": "FP32", "shape": [1], "data": [0]}]}, 400, "unknown input"),
        ({"inputs": [{"name": "image", "datatype": "FP32", "shape": [1], "data": [0]}]}, 400, "must be BYTES"),
        (
            {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 3, 8, 8], "data": [0]}]},
            400,
            "[N, 3, 32, 32]",
        ),
        ({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 3, 32, 32], "data": [0]}]}, 400, "holds 3072"),
        ({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 3, 32, 32], "data": ["x"] * 3072}]}, 400, ""),
        ({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 3, 32, 32], "data": [1e39] * 3072}]}, 400, ""),
        ({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [2], "data": ["a"]}]}, 400, "base64"),
        ({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [5], "data": ["a"] * 5}]}, 422, "MAX_BATCH_ITEMS"),
        ({**image_doc(), "outputs": [{"name": "logits"}]}, 400, "unknown output"),
        ({**image_doc(), "outputs": [{"name": "probabilities", "parameters": {"classification": 7}}]}, 400, "1 and 6"),
    ],
)
def test_refusals_are_protocol_errors(raw: TestClient, doc: dict, status: int, words: str) -> None:
    r = infer_json(raw, doc)
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and isinstance(body["error"], str) and words in body["error"]


def test_binary_framing_errors(raw: TestClient) -> None:
    head = json.dumps(
        {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": 99}}]}
    ).encode()
    blob = serialize_bytes([photo(1)])
    for header, body in [("abc", head + blob), (str(len(head) + 10**6), head), (str(len(head)), head + blob)]:
        r = raw.post(f"/v2/models/{MODEL}/infer", content=body, headers={"Inference-Header-Content-Length": header})
        assert r.status_code == 400 and set(r.json()) == {"error"}, r.text
    ok = json.dumps(
        {
            "inputs": [
                {"name": "image", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": len(blob)}}
            ]
        }
    ).encode()
    r = raw.post(
        f"/v2/models/{MODEL}/infer", content=ok + blob, headers={"Inference-Header-Content-Length": str(len(ok))}
    )
    assert r.status_code == 200 and r.json()["outputs"][0]["shape"] == [1, 6]  # JSON output unless asked for binary
    assert r.json()["parameters"] == {"calibrated": False, "temperature": 1.0}


def test_json_response_echoes_id_and_sums_to_one(raw: TestClient) -> None:
    r = infer_json(raw, {**image_doc(2), "id": "req-42"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["id"] == "req-42" and body["model_name"] == MODEL and body["model_version"] == "1"
    (out,) = body["outputs"]
    assert out["datatype"] == "FP32" and out["shape"] == [2, 6]
    assert np.allclose(np.array(out["data"]).reshape(2, 6).sum(1), 1.0, atol=1e-5)


def test_paths_auth_and_size_limits(raw: TestClient, spatial_model_path: Path) -> None:
    assert infer_json(raw, image_doc(), headers={"X-API-Key": "wrong"}).status_code == 401
    assert set(infer_json(raw, image_doc(), headers={"X-API-Key": "wrong"}).json()) == {"error"}
    assert raw.post("/v2/models/other/infer", content=json.dumps(image_doc())).status_code == 404
    assert raw.post(f"/v2/models/{MODEL}/versions/9/infer", content=json.dumps(image_doc())).status_code == 404
    assert raw.post(f"/v2/models/{MODEL}/versions/1/infer", content=json.dumps(image_doc())).status_code == 200
    infer_doc = raw.get("/openapi.json").json()["paths"]["/v2/models/{name}/infer"]["post"]
    assert {"application/json", "application/octet-stream"} <= set(infer_doc["requestBody"]["content"])
    assert raw.get("/v2/health/live").status_code == 200 and raw.get("/v2/nothing").json().keys() == {"error"}
    with make_client(spatial_model_path, max_upload_bytes=2000) as small:
        r = infer_json(small, image_doc(4))
        assert r.status_code == 413 and "MAX_UPLOAD_BYTES" in r.json()["error"]
