"""Slow and idle clients are cut off, open connections are capped, malformed HTTP gets the JSON error.

Raw sockets on loopback against the real server (``python -m service``'s
protocol and settings), with timeouts shortened so every test ends in seconds.
"""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.service.conftest import make_settings, serve

FAST = {"header_timeout_s": 0.5, "body_timeout_s": 0.5, "keep_alive_timeout_s": 0.5, "body_min_rate": 1000}


@pytest.fixture(scope="module")
def url(rgb_model_path: Path) -> Iterator[str]:
    with serve(make_settings(rgb_model_path, **FAST)) as base:
        yield base


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def read_until_closed(sock: socket.socket, limit_s: float = 8.0) -> tuple[bytes, float]:
    """Everything the server sends until it closes; and how long that took."""
    start, data = time.monotonic(), b""
    sock.settimeout(limit_s)
    while chunk := sock.recv(65536):
        data += chunk
    return data, time.monotonic() - start


def error_of(raw: bytes) -> tuple[int, str]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)["error"]["code"]


def test_an_idle_connection_is_closed(url: str) -> None:
    with connect(url) as sock:
        data, took = read_until_closed(sock)
    assert data == b"" and took < 5  # nothing to answer: closed after HEADER_TIMEOUT_S


def test_slow_headers_get_408(url: str) -> None:
    with connect(url) as sock:
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\n")  # ... and the rest never comes
        data, took = read_until_closed(sock)
    assert error_of(data) == (408, "request_timeout") and took < 5


def test_a_body_at_a_byte_a_second_gets_408(url: str) -> None:
    with connect(url) as sock:
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 1000\r\n\r\n")
        start, answer = time.monotonic(), b""
        sock.settimeout(0.2)
        while time.monotonic() - start < 8:
            try:
                sock.sendall(b"\0")
                answer += sock.recv(65536)
                if answer:
                    break
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
    assert error_of(answer) == (408, "request_timeout")
    assert time.monotonic() - start < 5


def test_a_steady_body_is_not_cut_off(url: str, red_jpeg: bytes) -> None:
    """Sent in pieces over longer than BODY_TIMEOUT_S, but faster than BODY_MIN_RATE: served."""
    body = red_jpeg + b"\0" * (3000 - len(red_jpeg))  # trailing zeros after a JPEG are ignored by decoders
    with connect(url) as sock:
        head = f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: {len(body)}\r\n\r\n"
        sock.sendall(head.encode())
        for i in range(0, len(body), 300):  # 3000 bytes in 10 pieces, 0.08 s apart: 0.8 s at 3.7 kB/s
            sock.sendall(body[i : i + 300])
            time.sleep(0.08)
        sock.settimeout(10)
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:300]


def test_lingering_after_an_early_refusal_does_not_wait_for_a_trickle(url: str) -> None:
    """The 415 is answered before the body; the rest is drained only while it comes at a useful rate."""
    with connect(url) as sock:
        head = b"POST /predict/batch HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 100000\r\n\r\n"
        sock.sendall(head)
        sock.settimeout(0.2)
        start, answer, closed = time.monotonic(), b"", False
        while time.monotonic() - start < 15 and not closed:
            try:
                sock.sendall(b"\0")  # a byte every 0.2 s
                chunk = sock.recv(65536)
                closed = chunk == b""
                answer += chunk
            except TimeoutError:
                continue
            except OSError:
                closed = True
    assert error_of(answer) == (415, "unsupported_media_type")
    assert closed and time.monotonic() - start < 12
    lingered = re.search(r"^lingering_closes_total (\S+)$", httpx.get(f"{url}/metrics").text, re.M)
    assert lingered and float(lingered.group(1)) >= 1


def test_an_idle_keep_alive_connection_is_closed(url: str) -> None:
    with connect(url) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        data, took = read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 200") and took < 5


def test_malformed_http_gets_the_json_error(url: str) -> None:
    with connect(url) as sock:
        sock.sendall(b"HELLO\r\n\r\n")
        data, _ = read_until_closed(sock)
    assert error_of(data) == (400, "bad_http_request")


def test_timeouts_are_counted(url: str) -> None:
    text = httpx.get(f"{url}/metrics").text
    for phase in ("idle", "header", "body"):
        assert f'connection_timeouts_total{{phase="{phase}"}}' in text


def test_open_connections_are_capped(rgb_model_path: Path) -> None:
    with serve(make_settings(rgb_model_path, max_connections=4)) as base:
        idle = [connect(base) for _ in range(4)]  # four held open: the cap is reached
        try:
            time.sleep(0.2)
            r = httpx.get(f"{base}/healthz", timeout=5)
            assert r.status_code == 503 and r.json()["error"]["code"] == "too_many_connections"
            assert r.headers["retry-after"] == "1" and r.headers["connection"] == "close"
        finally:
            for sock in idle:
                sock.close()
        time.sleep(0.2)
        assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
        assert "connections_refused_total 1.0" in httpx.get(f"{base}/metrics", timeout=5).text
