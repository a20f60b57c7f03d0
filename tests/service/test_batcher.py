"""The micro-batcher: a lone request goes at once, a burst shares inferences, answers keep their owners."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from service.batcher import Inferred, MicroBatcher


class Recorder:
    """A real (numpy) model stand-in: row i of the output is the input's mean, batch sizes recorded."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.sizes: list[int] = []
        self.gate = gate

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        if self.gate is not None:
            self.gate.wait(5)
        self.sizes.append(len(batch))
        return batch.reshape(len(batch), -1).mean(axis=1, keepdims=True)


def run(coro):  # noqa: ANN001, ANN201 - tiny helper
    return asyncio.run(asyncio.wait_for(coro, timeout=10))


def test_lone_request_does_not_wait_for_company() -> None:
    """With a 60 s maximum wait, a lone request must still be answered (no one else is decoding)."""
    infer = Recorder()

    async def main() -> Inferred:
        batcher = MicroBatcher(infer, max_batch_size=8, max_wait_ms=60_000)
        batcher.start()
        try:
            return await batcher.submit(np.full((1, 2, 2), 3.0, np.float32))
        finally:
            await batcher.stop()

    answer = run(main())
    assert answer.row[0] == pytest.approx(3.0) and answer.batch_size == 1 and answer.seconds >= 0
    assert infer.sizes == [1]


def test_burst_is_batched_and_answers_go_to_their_owners() -> None:
    gate = threading.Event()
    infer = Recorder(gate)

    async def main() -> list[Inferred]:
        batcher = MicroBatcher(infer, max_batch_size=4, max_wait_ms=0)
        batcher.start()
        try:
            first = asyncio.ensure_future(batcher.submit(np.full((1, 1, 1), 0.0, np.float32)))
            await asyncio.sleep(0.05)  # the first inference is now running (held by the gate)
            rest = [
                asyncio.ensure_future(batcher.submit(np.full((1, 1, 1), float(i), np.float32))) for i in range(1, 10)
            ]
            await asyncio.sleep(0.05)
            gate.set()
            return await asyncio.gather(first, *rest)
        finally:
            await batcher.stop()

    out = run(main())
    assert [float(o.row[0]) for o in out] == [float(i) for i in range(10)]
    assert [o.batch_size for o in out] == [1, 4, 4, 4, 4, 4, 4, 4, 4, 1]
    assert infer.sizes == [1, 4, 4, 1]  # queued while busy -> full batches, never above the maximum


def test_waits_for_requests_still_decoding() -> None:
    infer = Recorder()

    async def main() -> None:
        batcher = MicroBatcher(infer, max_batch_size=8, max_wait_ms=2_000)
        batcher.start()
        try:

            async def late() -> Inferred:
                with batcher.expect():
                    await asyncio.sleep(0.05)  # "decoding"
                return await batcher.submit(np.zeros((1, 1, 1), np.float32))

            await asyncio.gather(batcher.submit(np.zeros((1, 1, 1), np.float32)), late(), late())
        finally:
            await batcher.stop()

    run(main())
    assert infer.sizes == [3]  # the early request waited for the two that were still decoding


def test_inference_error_reaches_every_waiter() -> None:
    def broken(batch: np.ndarray) -> np.ndarray:
        raise RuntimeError("boom")

    async def main() -> list[object]:
        batcher = MicroBatcher(broken, max_batch_size=4, max_wait_ms=0)
        batcher.start()
        try:
            return await asyncio.gather(
                *(batcher.submit(np.zeros((1, 1, 1), np.float32)) for _ in range(3)), return_exceptions=True
            )
        finally:
            await batcher.stop()

    assert all(isinstance(r, RuntimeError) for r in run(main()))
