"""Secure defaults: headers on every answer, a strict CSP on the pages, no banner, the API key done right."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from service.security import page_policy
from service.settings import Settings
from tests.service.conftest import make_client, make_settings, serve

KEY = "s3cret"


@pytest.fixture(scope="module")
def keyed(rgb_model_path: Path) -> Iterator[TestClient]:
    with make_client(rgb_model_path, api_key=KEY) as c:
        yield c


def sha(block: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(block.encode()).digest()).decode() + "'"


def directives(policy: str) -> dict[str, list[str]]:
    return {d.split()[0]: d.split()[1:] for d in policy.split("; ")}


def test_every_answer_has_nosniff_no_framing_and_a_closed_policy(keyed: TestClient) -> None:
    for r in (keyed.get("/healthz"), keyed.get("/v1/model"), keyed.post("/predict", content=b"x"), keyed.get("/x")):
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY" and r.headers["referrer-policy"] == "no-referrer"
        assert r.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"


def test_the_page_runs_only_its_own_inline_script_and_style(keyed: TestClient) -> None:
    r = keyed.get("/")
    script = re.search(r"<script>(.*?)</script>", r.text, re.S).group(1)  # type: ignore[union-attr]
    style = re.search(r"<style>(.*?)</style>", r.text, re.S).group(1)  # type: ignore[union-attr]
    policy = directives(r.headers["content-security-policy"])
    assert policy["script-src"] == ["'self'", sha(script)] and policy["style-src"] == ["'self'", sha(style)]
    assert policy["default-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    assert policy["connect-src"] == ["'self'"] and "blob:" in policy["img-src"]  # fetch + the preview
    assert r.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_the_docs_pages_get_a_policy_from_their_own_html(keyed: TestClient, path: str) -> None:
    r = keyed.get(path)
    assert r.status_code == 200
    policy = directives(r.headers["content-security-policy"])
    for block in re.findall(r"<script>(.*?)</script>", r.text, re.S):
        assert sha(block) in policy["script-src"]
    assert "'unsafe-inline'" not in policy["script-src"] and "'unsafe-eval'" not in policy["script-src"]
    for src in re.findall(r'<script src="(https?://[^/"]+)', r.text):  # FastAPI's stock pages use a CDN
        assert src in policy["script-src"]
    assert ("'unsafe-inline'" in policy["style-src"]) == (path == "/redoc")  # ReDoc writes styles at run time


def test_a_page_served_from_this_origin_is_self_only() -> None:
    html = b'<html><link rel="stylesheet" href="/static/a.css"><script src="/static/a.js"></script></html>'
    policy = directives(page_policy(html, "/docs"))
    assert policy["script-src"] == ["'self'"] and policy["style-src"] == ["'self'"]


def test_no_server_banner(rgb_model_path: Path) -> None:
    with serve(make_settings(rgb_model_path)) as url:
        r = httpx.get(f"{url}/healthz")
    assert "server" not in r.headers and r.headers["x-content-type-options"] == "nosniff"


def test_an_empty_api_key_is_an_error_not_off(rgb_model_path: Path) -> None:
    for blank in ("", "   "):
        with pytest.raises(ValidationError, match="API_KEY is set but empty"):
            Settings(model_path=rgb_model_path, api_key=blank)


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"X-API-Key": KEY}, 200),
        ({"Authorization": f"Bearer {KEY}"}, 200),
        ({"Authorization": f"bearer {KEY}"}, 200),
        ({"X-API-Key": "", "Authorization": f"Bearer {KEY}"}, 200),  # an empty X-API-Key does not hide the token
        ({"X-API-Key": KEY, "Authorization": "Bearer wrong"}, 200),  # a non-empty X-API-Key is the one checked
        ({"X-API-Key": "wrong", "Authorization": f"Bearer {KEY}"}, 401),
        ({"Authorization": "Bearer "}, 401),
        ({"Authorization": KEY}, 401),
        ({"Authorization": f"Basic {KEY}"}, 401),
        ({}, 401),
    ],
)
def test_api_key_header_precedence(keyed: TestClient, headers: dict[str, str], status: int) -> None:
    assert keyed.get("/v1/model", headers=headers).status_code == status


def test_which_endpoints_stay_open_with_a_key(keyed: TestClient) -> None:
    open_ = {path: keyed.get(path).status_code for path in ("/", "/healthz", "/readyz", "/metrics", "/docs", "/redoc")}
    open_["/openapi.json"] = keyed.get("/openapi.json").status_code
    assert set(open_.values()) == {200}, open_
    assert keyed.get("/v1/model").status_code == 401
    assert keyed.post("/predict", content=b"x").status_code == 401
    assert keyed.post("/predict/batch", json={"images": []}).status_code == 401
