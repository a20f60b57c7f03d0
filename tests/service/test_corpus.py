"""Every unusual or hostile upload gets its expected status, as a JSON answer, in every body form."""

from __future__ import annotations

import base64

import pytest
from fastapi.testclient import TestClient

from tests.service.corpus import Case, cases

CASES = [pytest.param(c, id=c.name, marks=[pytest.mark.skip(reason=c.skip)] if c.skip else []) for c in cases()]


def check(r, case: Case) -> None:  # noqa: ANN001 - an httpx.Response
    assert r.status_code == case.status, r.text
    body = r.json()
    if case.status == 200:
        assert isinstance(body["confidence"], float) and body["top_k"][0]["label"] == body["label"]
        if case.label:
            assert body["label"] == case.label
    else:
        assert set(body) == {"error"} and body["error"]["code"] and body["error"]["message"]


@pytest.mark.parametrize("case", CASES)
def test_multipart_upload(client: TestClient, case: Case) -> None:
    # The declared type is deliberately wrong: the format must come from the bytes.
    check(client.post("/predict", files={"file": ("upload.jpg", case.build(), "image/jpg")}), case)


@pytest.mark.parametrize("case", CASES)
def test_raw_body(client: TestClient, case: Case) -> None:
    check(client.post("/predict", content=case.build(), headers={"content-type": "application/octet-stream"}), case)


@pytest.mark.parametrize("case", [c for c in CASES if c.values[0].name != "empty"])  # "" is a 422 (test_endpoints)
def test_json_base64(client: TestClient, case: Case) -> None:
    r = client.post("/predict", json={"image": base64.b64encode(case.build()).decode()})
    check(r, case)


@pytest.mark.parametrize("case", CASES)
def test_grayscale_model_same_statuses(gray_client: TestClient, case: Case) -> None:
    r = gray_client.post("/predict", files={"photo": ("x.bin", case.build(), "application/octet-stream")})
    assert r.status_code == case.status, r.text
    if case.status == 200:
        assert r.json()["label"] in {"dark", "light"}
