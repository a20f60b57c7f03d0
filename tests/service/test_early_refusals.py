"""An answer sent before the body was read (413, 401, 415, 404) reaches every common client.

Before the lingering close, uvicorn closed the socket with the body unread and
the kernel reset the connection under the client: Python's ``urllib`` and
``http.client`` raised ``ConnectionResetError`` instead of reading the JSON
error. Each client here sends a body far larger than the socket buffers, so
the answer always arrives while it is still sending.
"""

from __future__ import annotations

import http.client
import json
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import requests

from tests.service.cdp import CHROMIUM, Browser, Page
from tests.service.conftest import make_settings, serve

BODY = b"\xff\xd8" + b"\0" * (8 * 1024 * 1024)  # 8 MiB of "JPEG", over the limit and over any socket buffer
KEY = "s3cret"
# (path, headers, status, code): each is decided before the body is read
CASES = {
    "413": ("/predict", {"X-API-Key": KEY}, 413, "payload_too_large"),
    "401": ("/predict", {}, 401, "unauthorized"),
    "415": ("/predict/batch", {"X-API-Key": KEY}, 415, "unsupported_media_type"),
    "404": ("/nowhere", {}, 404, "not_found"),
}


@pytest.fixture(scope="module")
def url(rgb_model_path: Path) -> Iterator[str]:
    with serve(make_settings(rgb_model_path, max_upload_bytes=100_000, api_key=KEY)) as base:
        yield base


def with_urllib(url: str, headers: dict[str, str]) -> tuple[int, dict, dict]:
    request = urllib.request.Request(url, data=BODY, headers={"Content-Type": "image/jpeg", **headers})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, json.load(r), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()), dict(e.headers)


def with_http_client(url: str, headers: dict[str, str]) -> tuple[int, dict, dict]:
    host, _, rest = url.removeprefix("http://").partition("/")
    conn = http.client.HTTPConnection(host, timeout=30)
    try:
        conn.request("POST", "/" + rest, body=BODY, headers={"Content-Type": "image/jpeg", **headers})
        r = conn.getresponse()
        return r.status, json.loads(r.read()), dict(r.getheaders())
    finally:
        conn.close()


def with_requests(url: str, headers: dict[str, str]) -> tuple[int, dict, dict]:
    r = requests.post(url, data=BODY, headers={"Content-Type": "image/jpeg", **headers}, timeout=30)
    return r.status_code, r.json(), dict(r.headers)


def with_httpx(url: str, headers: dict[str, str]) -> tuple[int, dict, dict]:
    r = httpx.post(url, content=BODY, headers={"Content-Type": "image/jpeg", **headers}, timeout=30)
    return r.status_code, r.json(), dict(r.headers)


def with_curl(url: str, headers: dict[str, str], tmp: Path) -> tuple[int, dict, dict]:
    body = tmp / "body.jpg"
    body.write_bytes(BODY)
    cmd = ["curl", "-sS", "-o", str(tmp / "answer.json"), "-w", "%{http_code}", "--max-time", "30"]
    cmd += ["-H", "Content-Type: image/jpeg", "--data-binary", f"@{body}", url]
    for name, value in headers.items():
        cmd += ["-H", f"{name}: {value}"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return int(out.stdout), json.loads((tmp / "answer.json").read_text()), {}


def with_curl_no_expect(url: str, headers: dict[str, str], tmp: Path) -> tuple[int, dict, dict]:
    """curl without ``Expect: 100-continue``: it sends the whole body at once, like most clients."""
    return with_curl(url, {**headers, "Expect": ""}, tmp)


CLIENTS = {"urllib": with_urllib, "http.client": with_http_client, "requests": with_requests, "httpx": with_httpx}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("client", CLIENTS)
def test_python_clients_read_the_json_refusal(url: str, client: str, case: str) -> None:
    path, headers, status, code = CASES[case]
    got, body, answer_headers = CLIENTS[client](url + path, headers)
    assert (got, body["error"]["code"]) == (status, code)
    assert {k.lower(): v for k, v in answer_headers.items()}.get("connection") == "close"  # not reused after


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("client", [with_curl, with_curl_no_expect], ids=["curl", "curl-no-expect"])
def test_curl_reads_the_json_refusal(url: str, client, case: str, tmp_path: Path) -> None:
    path, headers, status, code = CASES[case]
    got, body, _ = client(url + path, headers, tmp_path)
    assert (got, body["error"]["code"]) == (status, code)


@pytest.mark.browser
def test_a_browser_reads_the_json_refusal(url: str) -> None:
    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed: apt-get install -y chromium")
    browser = Browser()
    try:
        page = Page(browser, url + "/")
        page.wait_for("location.protocol === 'http:' && document.readyState === 'complete'")
        for path, headers, status, code in CASES.values():
            options = f"{{method: 'POST', headers: {json.dumps(headers)}, body: new Uint8Array({len(BODY)})}}"
            script = f"fetch({path!r}, {options}).then(async (r) => [r.status, (await r.json()).error.code])"
            result = page.send("Runtime.evaluate", {"expression": script, "awaitPromise": True, "returnByValue": True})
            assert result["result"].get("value") == [status, code], result
    finally:
        browser.close()


def test_the_connection_stays_usable_after_a_fully_read_refusal(url: str) -> None:
    """A refusal after the whole body was read (bad base64) keeps the connection alive as usual."""
    with httpx.Client(base_url=url, timeout=10) as c:
        for _ in range(3):
            r = c.post("/predict", json={"image": "%%%"}, headers={"X-API-Key": KEY})
            assert r.status_code == 400 and r.headers.get("connection") != "close"
