"""Admission control, deadlines and the memory budget: shed at once with 503, never infer for nobody.

The admission and budget classes are driven directly with asyncio (exact and
fast); the end-to-end tests hold the one slot with a client that sends its
body slowly, so the server is "busy" without a slow model or a timed assertion.
"""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from PIL import Image

from service.admission import Admission
from service.app import create_app
from service.batcher import DeadlineExceeded, MicroBatcher
from service.errors import ApiError, Overloaded
from service.memory import MemoryBudget, auto_budget, memory_limit
from tests.service.conftest import encode, make_settings, serve

PNG = encode(Image.new("RGB", (40, 30), (20, 30, 230)), "PNG")


def run(coro):  # noqa: ANN001, ANN201 - tiny helper
    return asyncio.run(asyncio.wait_for(coro, timeout=10))


# --- the classes ------------------------------------------------------------------------------------


def test_admission_sheds_past_the_queue_and_hands_slots_on_in_order() -> None:
    async def main() -> list[str]:
        adm = Admission(capacity=1, max_queue=2)
        far = time.monotonic() + 5
        await adm.enter(far, 5)  # the one slot
        waiting = [asyncio.ensure_future(adm.enter(far, 5)) for _ in range(2)]
        await asyncio.sleep(0)
        with pytest.raises(Overloaded) as full:
            await adm.enter(far, 5)
        assert full.value.reason == "queue_full" and full.value.status == 503
        assert full.value.headers and int(full.value.headers["Retry-After"]) >= 1
        adm.leave(0.01)
        await asyncio.wait_for(waiting[0], 1)
        order = ["first in", "second waits" if not waiting[1].done() else "-"]
        adm.leave(0.01)
        await waiting[1]
        adm.leave(0.01)
        assert adm.active == 0
        return order

    assert run(main()) == ["first in", "second waits"]


def test_admission_refuses_at_once_a_wait_that_would_miss_the_deadline() -> None:
    async def main() -> None:
        adm = Admission(capacity=1, max_queue=10)
        await adm.enter(time.monotonic() + 5, 5)
        adm.leave(0.6)  # an answer took 0.6 s of the server's time
        await adm.enter(time.monotonic() + 5, 5)  # one in flight: the next answer is ~1.2 s away
        start = time.monotonic()
        with pytest.raises(Overloaded) as shed:
            await adm.enter(time.monotonic() + 1.0, 1.0)
        assert shed.value.reason == "deadline" and time.monotonic() - start < 0.5
        assert shed.value.headers == {"Retry-After": "1"}
        waiter = asyncio.ensure_future(adm.enter(time.monotonic() + 1.5, 1.5))  # would fit, but nobody leaves
        with pytest.raises(Overloaded) as late:
            await waiter
        assert late.value.reason == "queue_timeout"

    run(main())


def test_a_cancelled_waiter_gives_its_place_back() -> None:
    async def main() -> None:
        adm = Admission(capacity=1, max_queue=5)
        await adm.enter(time.monotonic() + 5, 5)
        gone = asyncio.ensure_future(adm.enter(time.monotonic() + 5, 5))
        stays = asyncio.ensure_future(adm.enter(time.monotonic() + 5, 5))
        await asyncio.sleep(0)
        gone.cancel()
        await asyncio.sleep(0)
        adm.leave(0.1)
        await stays
        adm.leave(0.1)
        assert adm.active == 0

    run(main())


def test_memory_budget_waits_refuses_and_lets_small_ones_pass_a_big_waiter() -> None:
    async def main() -> None:
        budget = MemoryBudget(100)
        with pytest.raises(ApiError) as huge:
            await budget.reserve(101, None, "this image")
        assert huge.value.status == 413 and "memory budget" in huge.value.message
        await budget.reserve(60, None)
        big = asyncio.ensure_future(budget.reserve(70, time.monotonic() + 5))  # must wait for the 60
        await asyncio.sleep(0)
        await asyncio.wait_for(budget.reserve(30, time.monotonic() + 5), 1)  # fits now: not held up by the big one
        budget.release(30)
        budget.release(50)  # 10 held: the big one (70) now fits
        await big
        assert budget.in_use == 80
        small = asyncio.ensure_future(budget.reserve(30, time.monotonic() + 5))
        await asyncio.sleep(0)
        with pytest.raises(Overloaded) as late:
            await budget.reserve(90, time.monotonic() + 0.05)
        assert late.value.reason == "memory"
        budget.release(80)
        await small
        assert budget.in_use == 30
        budget.release(30)
        assert budget.in_use == 0

    run(main())


def test_bodies_never_take_the_memory_decodes_need() -> None:
    async def main() -> None:
        budget = MemoryBudget(100)
        await budget.reserve(60, None, body=True)  # bodies may hold 60% of it
        with pytest.raises(Overloaded):
            await budget.reserve(10, time.monotonic() + 0.05, body=True)  # another body waits...
        await asyncio.wait_for(budget.reserve(40, time.monotonic() + 5), 1)  # ...a decode still fits
        budget.release(40)
        budget.release(60, body=True)
        assert budget.in_use == budget.bodies == 0

    run(main())


def test_auto_budget_is_half_the_limit_within_bounds() -> None:
    assert auto_budget(2 * 1024**3) == 1024**3
    assert auto_budget(64 * 1024**3) == 2 * 1024**3
    assert auto_budget(100 * 1024**2) == 256 * 1024**2
    assert memory_limit() > 0


def test_batcher_drops_jobs_past_their_deadline_without_inferring() -> None:
    sizes: list[int] = []

    def infer(batch: np.ndarray) -> np.ndarray:
        sizes.append(len(batch))
        return batch.reshape(len(batch), -1).mean(axis=1, keepdims=True)

    async def main() -> None:
        batcher = MicroBatcher(infer, max_batch_size=4, max_wait_ms=0)
        batcher.start()
        try:
            with pytest.raises(DeadlineExceeded):
                await batcher.submit(np.zeros((1, 2, 2), np.float32), deadline=time.monotonic() - 1)
            ok = await batcher.submit(np.ones((1, 2, 2), np.float32), deadline=time.monotonic() + 5)
            assert ok.batch_size == 1
        finally:
            await batcher.stop()

    run(main())
    assert sizes == [1]  # only the job still in time was inferred


# --- end to end -------------------------------------------------------------------------------------


@contextmanager
def slow_upload(url: str, declared: int = 1000) -> Iterator[socket.socket]:
    """A /predict whose body is still on its way."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    head = f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: {declared}\r\n\r\n"
    sock.sendall(head.encode() + b"\x89PNG")
    try:
        yield sock
    finally:
        sock.close()


@contextmanager
def held_inference(app: FastAPI) -> Iterator[threading.Event]:
    """Every inference waits for the event: admitted requests stay in flight until the test sets it."""
    gate = threading.Event()
    batcher = app.state.predictor.batcher
    batcher._instances = [
        (lambda batch, infer=infer: (gate.wait(10), infer(batch))[1]) for infer in batcher._instances
    ]  # each inference instance (one on this machine)
    try:
        yield gate
    finally:
        gate.set()


def post_in_thread(url: str, answers: list[int]) -> threading.Thread:
    thread = threading.Thread(target=lambda: answers.append(httpx.post(f"{url}/predict", content=PNG).status_code))
    thread.start()
    return thread


def metric(url: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", httpx.get(f"{url}/metrics").text, re.M)
    return float(match.group(1)) if match else 0.0


def wait_for(predicate, timeout: float = 5) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        time.sleep(0.02)


def test_beyond_the_queue_requests_are_shed_at_once_with_retry_after(rgb_model_path: Path) -> None:
    app = create_app(make_settings(rgb_model_path, max_in_flight=1, max_queue=1, request_timeout_s=20))
    answers: list[int] = []
    with serve(app) as url, held_inference(app) as gate:
        first = post_in_thread(url, answers)
        wait_for(lambda: metric(url, "admission_in_flight") == 1)  # inferring, held
        second = post_in_thread(url, answers)
        wait_for(lambda: metric(url, "admission_queue_depth") == 1)
        start = time.monotonic()
        r = httpx.post(f"{url}/predict", content=PNG, timeout=5)
        assert r.status_code == 503 and r.json()["error"]["code"] == "overloaded"
        assert time.monotonic() - start < 5 and int(r.headers["retry-after"]) >= 1
        assert metric(url, 'requests_shed_total{reason="queue_full"}') == 1
        assert httpx.get(f"{url}/healthz").status_code == 200  # only the predict routes are admitted
        gate.set()
        first.join(10)
        second.join(10)
    assert answers == [200, 200]  # the queued request got the slot


def test_a_queued_request_gets_503_at_its_deadline(rgb_model_path: Path) -> None:
    app = create_app(make_settings(rgb_model_path, max_in_flight=1, request_timeout_s=0.5))
    answers: list[int] = []
    with serve(app) as url, held_inference(app):
        first = post_in_thread(url, answers)
        wait_for(lambda: metric(url, "admission_in_flight") == 1)
        r = httpx.post(f"{url}/predict", content=PNG, timeout=10)
        assert r.status_code == 503 and r.json()["error"]["code"] == "overloaded"
        assert metric(url, 'requests_shed_total{reason="queue_timeout"}') == 1
    first.join(10)


def test_a_slow_upload_holds_no_slot(rgb_model_path: Path) -> None:
    """Clients sending their bodies slowly do not keep others from being served."""
    settings = make_settings(rgb_model_path, max_in_flight=1, max_queue=1, body_timeout_s=30)
    with serve(settings) as url, slow_upload(url), slow_upload(url), slow_upload(url):
        assert httpx.post(f"{url}/predict", content=PNG, timeout=10).status_code == 200
        assert metric(url, "admission_in_flight") == 0
        assert metric(url, "memory_budget_bytes_in_use") == 3 * 2 * 1000  # their declared bodies, twice: no more


def test_a_request_whose_client_left_is_not_inferred(rgb_model_path: Path) -> None:
    """B is decoded and waits for the micro-batch while A's inference runs; B's client leaves: B is dropped."""
    app = create_app(make_settings(rgb_model_path, request_timeout_s=20))
    answers: list[int] = []
    with serve(app) as url, held_inference(app) as gate:
        batcher = app.state.predictor.batcher
        first = post_in_thread(url, answers)
        wait_for(lambda: metric(url, "admission_in_flight") == 1)
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as leaver:
            leaver.sendall(f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: {len(PNG)}\r\n\r\n".encode() + PNG)
            wait_for(lambda: batcher._queue.qsize() == 1)  # decoded, waiting for the next micro-batch
        wait_for(lambda: metric(url, 'inferences_skipped_total{reason="client_gone"}') == 1)
        gate.set()
        first.join(10)
        assert answers == [200]
        assert metric(url, "inference_batch_size_sum") == 1.0  # B was never inferred
        assert metric(url, 'http_requests_total{method="POST",route="/predict",status="499"}') == 1
        assert metric(url, "admission_in_flight") == 0


def test_an_image_larger_than_the_memory_budget_is_413(rgb_model_path: Path) -> None:
    big = encode(Image.new("RGBA", (1500, 1500), (1, 2, 3, 4)), "PNG")  # ~38 MB to decode, 10 kB to send
    settings = make_settings(rgb_model_path, memory_budget_bytes=16 * 1024**2)
    with serve(settings) as url:
        r = httpx.post(f"{url}/predict", content=big, timeout=10)
        assert r.status_code == 413 and r.json()["error"]["code"] == "too_large_for_memory"
        assert "MEMORY_BUDGET_BYTES" in r.json()["error"]["message"]
        assert httpx.post(f"{url}/predict", content=PNG).status_code == 200
        assert metric(url, "memory_budget_bytes_in_use") == 0 and metric(url, "memory_budget_bytes") == 16 * 1024**2
