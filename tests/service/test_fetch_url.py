"""Images by URL: refused by default, fetched from an allow-listed local server, every refusal a clear 4xx.

The server is a real HTTP server on 127.0.0.1 started here; nothing leaves this machine (a redirect to
another host is refused before any connection is made).
"""

from __future__ import annotations

import base64
import ipaddress
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service.fetch import UrlPolicy
from tests.service.conftest import encode, make_client

RED = encode(Image.new("RGB", (64, 48), (230, 20, 20)), "JPEG")
LIMIT = 60_000  # MAX_UPLOAD_BYTES in these tests
BIG = b"\xff\xd8\xff" + bytes(LIMIT * 2)
NOISE = encode(Image.fromarray(np.random.default_rng(0).integers(0, 256, (120, 120, 3), dtype=np.uint8)), "PNG")


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def send(self, status: int, body: bytes, ctype: str = "image/jpeg", length: bool = True, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        if length:
            self.send_header("Content-Length", str(len(body)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        port = self.server.server_address[1]
        routes = {
            "/red.jpg": lambda: self.send(200, RED),
            "/noise.png": lambda: self.send(200, NOISE, "image/png"),
            "/page.html": lambda: self.send(200, b"<html><body>not an image</body></html>", "text/html"),
            "/big.jpg": lambda: self.send(200, BIG),
            "/stream.jpg": lambda: self.send(200, BIG, length=False),  # no Content-Length: counted as it streams
            "/slow.jpg": self.slow,
            "/missing.jpg": lambda: self.send(404, b"no such file", "text/plain"),
            "/same-host": lambda: self.send(302, b"", Location="/red.jpg"),
            "/metadata": lambda: self.send(302, b"", Location="http://169.254.169.254/latest/meta-data/"),
            "/other-port": lambda: self.send(302, b"", Location=f"http://localhost:{port}/red.jpg"),
            "/loop": lambda: self.send(302, b"", Location="/loop"),
        }
        routes.get(self.path, lambda: self.send(404, b""))()

    def slow(self) -> None:
        time.sleep(2.0)  # longer than the read timeout below; bounded, so the server stops by itself
        self.send(200, RED)


@pytest.fixture(scope="module")
def origin() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


ALLOW_LOCAL = {
    "url_allowed_hosts": "127.0.0.1",
    "url_allowed_networks": "127.0.0.1/32",
    "url_allow_http": True,
    "url_read_timeout_s": 0.5,
    "max_upload_bytes": LIMIT,
}


@pytest.fixture(scope="module")
def client(rgb_model_path: Path) -> Iterator[TestClient]:
    with make_client(rgb_model_path, **ALLOW_LOCAL) as c:
        yield c


def by_url(client: TestClient, url: str) -> tuple[int, dict]:
    r = client.post("/predict", json={"url": url})
    return r.status_code, r.json()


def test_refused_by_default(rgb_model_path: Path, origin: str) -> None:
    with make_client(rgb_model_path) as c:
        status, body = by_url(c, f"{origin}/red.jpg")
        assert status == 403 and body["error"]["code"] == "url_input_disabled"
        assert c.get("/v1/model").json()["serving"]["url_input"] is False


def test_allow_listed_local_server_works(client: TestClient, origin: str) -> None:
    status, body = by_url(client, f"{origin}/red.jpg")
    assert status == 200 and body["label"] == "red"
    direct = client.post("/predict", content=RED).json()
    assert body["top_k"] == direct["top_k"]  # the same decode rule and model path as an upload
    status, body = by_url(client, f"{origin}/same-host")  # a redirect on the same host is followed
    assert status == 200 and body["label"] == "red"


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/metadata", 403, "url_redirect_refused"),  # to the cloud metadata address: never connected to
        ("/other-port", 403, "url_redirect_refused"),  # to another host name, even on this machine
        ("/loop", 400, "url_fetch_failed"),
        ("/missing.jpg", 400, "url_fetch_failed"),
        ("/slow.jpg", 400, "url_timeout"),
        ("/big.jpg", 413, "payload_too_large"),  # refused from Content-Length
        ("/stream.jpg", 413, "payload_too_large"),  # cut off while streaming
        ("/page.html", 415, "unsupported_media_type"),  # the bytes decide, as for an upload
    ],
)
def test_each_refusal_is_a_clear_4xx(client: TestClient, origin: str, path: str, status: int, code: str) -> None:
    started = time.monotonic()
    got, body = by_url(client, origin + path)
    assert (got, body["error"]["code"]) == (status, code), body
    assert body["error"]["message"]
    assert time.monotonic() - started < 10  # bounded by the timeouts, whatever the server does


def test_policy_refusals_before_any_connection(rgb_model_path: Path, origin: str) -> None:
    port = origin.rsplit(":", 1)[1]
    cases = [
        ({}, f"https://localhost:{port}/red.jpg", 403, "url_host_refused"),
        ({"url_allow_http": False}, f"{origin}/red.jpg", 403, "url_scheme_refused"),
        ({}, f"ftp://127.0.0.1:{port}/red.jpg", 403, "url_scheme_refused"),
        ({}, f"http://user:pw@127.0.0.1:{port}/red.jpg", 422, "invalid_url"),
        ({}, "http://[::1", 422, "invalid_url"),
        ({}, 42, 422, "invalid_url"),
        # localhost resolves to a loopback address: refused unless that network is allow-listed
        ({"url_allowed_hosts": "localhost", "url_allowed_networks": ""}, f"http://localhost:{port}/red.jpg", 403, ""),
        ({"url_allowed_networks": ""}, f"{origin}/red.jpg", 403, "url_address_refused"),
    ]
    for overrides, url, status, code in cases:
        with make_client(rgb_model_path, **{**ALLOW_LOCAL, **overrides}) as c:
            got, body = by_url(c, url)  # type: ignore[arg-type]
            assert got == status, (url, body)
            assert body["error"]["code"] == (code or "url_address_refused"), (url, body)


def test_batch_mixes_urls_and_base64(client: TestClient, origin: str) -> None:
    images = [{"url": f"{origin}/red.jpg"}, {"url": f"{origin}/page.html"}, base64.b64encode(RED).decode()]
    answers = client.post("/predict/batch", json={"images": images}).json()
    assert answers[0]["label"] == "red" and answers[2]["label"] == "red"
    assert answers[1]["error"]["code"] == "unsupported_media_type"
    answers = client.post("/predict/batch", json={"images": [{"url": f"{origin}/metadata"}]}).json()
    assert answers[0]["error"]["code"] == "url_redirect_refused"


def test_a_batch_of_urls_shares_the_byte_limit(client: TestClient, origin: str) -> None:
    assert LIMIT / 2 < len(NOISE) < LIMIT  # each fits alone, two do not
    answers = client.post("/predict/batch", json={"images": [{"url": f"{origin}/noise.png"}] * 2}).json()
    codes = sorted(a["error"]["code"] if "error" in a else "ok" for a in answers)
    assert codes == ["ok", "payload_too_large"], answers


def test_address_and_host_rules() -> None:
    policy = UrlPolicy(
        hosts=("images.example.com", "*.cdn.example.net"), networks=(ipaddress.ip_network("10.1.0.0/16"),)
    )
    refused = ["127.0.0.1", "::1", "10.0.0.1", "172.16.0.1", "192.168.1.1", "169.254.169.254", "fe80::1", "fc00::1"]
    refused += ["::ffff:127.0.0.1", "100.64.0.1", "0.0.0.0", "224.0.0.1", "192.0.2.1"]
    assert not any(policy.address_allowed(ipaddress.ip_address(a)) for a in refused)
    assert all(policy.address_allowed(ipaddress.ip_address(a)) for a in ["8.8.8.8", "2001:4860::8888", "10.1.2.3"])
    assert policy.host_allowed("images.example.com") and policy.host_allowed("IMAGES.example.com.")
    assert policy.host_allowed("a.cdn.example.net") and not policy.host_allowed("cdn.example.net")
    assert not policy.host_allowed("images.example.com.evil.org") and not policy.host_allowed("evilcdn.example.net")
