"""Bodies built to break the parser get a 4xx that says why, never a 500 (each was a 500 before)."""

from __future__ import annotations

import base64
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service.jsonbody import MAX_DEPTH, decode_base64_bytes, parse_json
from tests.service.conftest import encode, make_client

PNG = encode(Image.new("RGB", (40, 30), (20, 30, 230)), "PNG")
B64 = base64.b64encode(PNG).decode()


@pytest.fixture(scope="module")
def c(rgb_model_path: Path) -> Iterator[TestClient]:
    with make_client(rgb_model_path) as client:
        yield client


def post_json(c: TestClient, text: str | bytes, path: str = "/predict") -> tuple[int, str]:
    r = c.post(path, content=text, headers={"content-type": "application/json"})
    return r.status_code, r.json()["error"]["code"] if r.status_code != 200 else "ok"


@pytest.mark.parametrize("path", ["/predict", "/predict/batch"])
def test_deep_nesting_is_400_not_recursion_error(c: TestClient, path: str) -> None:
    assert post_json(c, '{"image": ' + "[" * 2000 + "]" * 2000 + "}", path) == (400, "json_too_deep")
    assert post_json(c, "[" * 100_000, path) == (400, "json_too_complex")  # too many arrays, before any depth
    within = '{"x": ' + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + ', "image": "' + B64 + '"}'
    assert post_json(c, within) == (200, "ok")


def test_brackets_inside_strings_do_not_count_as_nesting(c: TestClient) -> None:
    assert post_json(c, '{"note": "' + "[{" * 500 + '", "image": "' + B64 + '"}') == (200, "ok")


@pytest.mark.parametrize("number", ["1" * 5000, "1" * 200, "0." + "5" * 5000, "1e" + "9" * 400])
def test_huge_numbers_are_400_not_value_error(c: TestClient, number: str) -> None:
    assert post_json(c, '{"image": "' + B64 + '", "n": ' + number + "}") == (400, "json_number_too_long")


def test_many_values_are_refused_before_they_become_objects(c: TestClient) -> None:
    assert post_json(c, "[" + "0," * 200_000 + "0]") == (400, "json_too_complex")
    assert post_json(c, '{"images": [' + "[]," * 20_000 + "[]]}", "/predict/batch") == (400, "json_too_complex")


@pytest.mark.parametrize(
    "body", [b'{"image": NaN}', b'{"image": Infinity}', b"\xff\xfe{}", b'{"image": "a"', b"", b"\x00" * 10]
)
def test_not_json_is_400(c: TestClient, body: bytes) -> None:
    assert post_json(c, body) == (400, "invalid_json")


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (B64[:8] + "-_" + B64[10:] + "+/", "invalid_base64"),  # two alphabets at once
        (B64 + "=AAAA", "invalid_base64"),  # data after the padding
        (B64[:4] * 3 + "Q", "invalid_base64"),  # 13 characters: length mod 4 = 1
        ("é" + B64, "invalid_base64"),
        ("data:image/png," + B64, "invalid_base64"),
        (123, "invalid_parameters"),
        ("   ", "invalid_parameters"),
    ],
)
def test_bad_base64_is_a_4xx(c: TestClient, value: object, code: str) -> None:
    r = c.post("/predict", json={"image": value})
    assert r.status_code in (400, 422) and r.json()["error"]["code"] == code


def test_base64_decoder_accepts_every_form_and_matches_the_standard_library() -> None:
    blob = bytes(range(256)) * 3 + b"xy"
    std, url = base64.b64encode(blob), base64.urlsafe_b64encode(blob)
    forms = [std, url, url.rstrip(b"="), b"data:image/png;base64," + std, b"\n".join([std[:76], std[76:]]), b" " + std]
    for form in forms:
        assert decode_base64_bytes(form, "x") == blob, form[:40]


def test_parse_json_gives_the_value() -> None:
    assert parse_json(b'{"images": ["a", "b"], "k": 3, "f": 1.5}') == {"images": ["a", "b"], "k": 3, "f": 1.5}


def test_multipart_never_touches_the_temp_folder(c: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """Files larger than Starlette's 1 MB spool threshold stay in memory: a full /tmp is not a 500."""
    monkeypatch.setattr(tempfile, "tempdir", "/nonexistent/unwritable")
    big = encode(Image.effect_noise((1200, 1000), 64).convert("RGB"), "PNG")
    assert len(big) > 1024 * 1024
    r = c.post("/predict", files={"file": ("big.png", big, "image/png")})
    assert r.status_code == 200, r.text
    r = c.post("/predict/batch", files=[("f", ("a.png", big)), ("f", ("b.png", PNG))])
    assert r.status_code == 200 and [a["label"] for a in r.json()][1] == "blue"


def test_memory_budget_is_all_returned_after_requests(c: TestClient) -> None:
    c.post("/predict", json={"image": B64})
    c.post("/predict", content=PNG)
    c.post("/predict", content=b"\0" * 5000)
    text = c.get("/metrics").text
    assert "memory_budget_bytes_in_use 0.0" in text
    assert "admission_in_flight 0.0" in text and "admission_queue_depth 0.0" in text
