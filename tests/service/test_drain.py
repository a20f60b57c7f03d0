"""SIGTERM: /readyz turns 503 first, requests are still served, then the process exits in bounded time.

``python -m service`` in a subprocess (signals go to a whole process), with a
client sending its body at a few bytes a second that would otherwise keep the
process alive for ever.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.service.conftest import encode

ROOT = Path(__file__).resolve().parents[2]
DRAIN_S, SHUTDOWN_S = 1.5, 1.5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else "exited"
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise TimeoutError("not ready")


@pytest.mark.slow
def test_sigterm_drains_then_exits_within_the_grace_period_despite_a_slow_client(rgb_model_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "MODEL_PATH": str(rgb_model_path),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "DRAIN_SECONDS": str(DRAIN_S),
        "SHUTDOWN_TIMEOUT_S": str(SHUTDOWN_S),
        "BODY_TIMEOUT_S": "600",  # the slow client is only stopped by the shutdown
        "INTRA_OP_THREADS": "1",
        "LOG_LEVEL": "warning",
    }
    proc = subprocess.Popen([sys.executable, "-m", "service"], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    slow = None
    try:
        wait_ready(url, proc)
        slow = socket.create_connection(("127.0.0.1", port), timeout=5)
        slow.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 100000\r\n\r\n")
        slow.sendall(b"\x89PNG")
        time.sleep(0.2)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        readiness = [httpx.get(f"{url}/readyz", timeout=2) for _ in range(3)]
        during = httpx.post(f"{url}/predict", content=encode(Image.new("RGB", (40, 30), "red"), "PNG"), timeout=5)
        alive = httpx.get(f"{url}/healthz", timeout=2).status_code
        while proc.poll() is None and time.monotonic() - sent < DRAIN_S + SHUTDOWN_S + 10:
            try:
                slow.sendall(b"\0")  # a byte every 0.1 s: never finishes on its own
            except OSError:
                pass
            time.sleep(0.1)
        exited_after = time.monotonic() - sent
    finally:
        if slow is not None:
            slow.close()
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
    assert [r.status_code for r in readiness] == [503] * 3
    assert readiness[0].json()["error"]["code"] == "draining"
    assert during.status_code == 200 and during.headers["connection"] == "close"  # served, not kept alive
    assert alive == 200  # liveness holds while draining
    assert proc.returncode == 0
    assert DRAIN_S <= exited_after < DRAIN_S + SHUTDOWN_S + 5, exited_after
