"""A short bounded load test on loopback: a few hundred requests at concurrency 16, zero errors."""

from __future__ import annotations

import asyncio
import base64
import re
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from tests.service.conftest import encode, make_settings, serve

REQUESTS, CONCURRENCY = 320, 16


async def hammer(url: str, photo: bytes) -> list[int]:
    statuses: list[int] = []
    forms = [
        {"files": {"file": ("photo.jpg", photo, "image/jpeg")}},
        {"content": photo, "headers": {"content-type": "image/jpeg"}},
        {"json": {"image": base64.b64encode(photo).decode()}},
    ]
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(REQUESTS):
        queue.put_nowait(i)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            i = queue.get_nowait()
            r = await client.post("/predict", **forms[i % len(forms)])
            statuses.append(r.status_code)
            assert r.status_code != 200 or r.json()["label"] == "red"

    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        await asyncio.gather(*(worker(client) for _ in range(CONCURRENCY)))
    return statuses


def test_load_on_loopback_has_zero_errors(rgb_model_path: Path) -> None:
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 40, (480, 640, 3), dtype=np.uint8)
    photo = encode(Image.fromarray(np.clip(noise + np.array([200, 10, 10]), 0, 255).astype(np.uint8)), quality=90)
    with serve(make_settings(rgb_model_path, max_batch_size=8, batch_wait_ms=2)) as url:
        statuses = asyncio.run(hammer(url, photo))
        metrics = httpx.get(f"{url}/metrics").text
    assert len(statuses) == REQUESTS and set(statuses) == {200}
    served = re.search(r'http_requests_total\{method="POST",route="/predict",status="200"\} (\S+)', metrics)
    assert served and float(served.group(1)) == REQUESTS
    # every image went through the micro-batcher exactly once, in however many onnxruntime calls
    assert f"inference_batch_size_sum {float(REQUESTS)}" in metrics
