"""Micro-batching: concurrent requests share one onnxruntime call.

One worker task owns the model. It takes the first waiting tensor, then any
that are already queued, up to ``max_batch_size``. It waits up to
``max_wait_ms`` for more only while other requests are still decoding (they
announce themselves with ``expect``), so a lone request is never delayed and a
burst fills the batch. Inference runs on one dedicated thread: the event loop
stays free and onnxruntime's own intra-op threads are the only compute threads.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

Infer = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Inferred:
    row: np.ndarray  # this request's row of the model's output
    seconds: float  # the onnxruntime call it shared
    batch_size: int  # how many requests shared it


class DeadlineExceeded(Exception):
    """The request's deadline passed while its tensor waited: it is dropped, not inferred."""


@dataclass
class _Job:
    tensor: np.ndarray  # (C, H, W) float32
    future: asyncio.Future[Inferred]
    deadline: float | None = None  # time.monotonic(); past it the job is dropped before inference


class MicroBatcher:
    def __init__(
        self,
        infer: Infer,
        max_batch_size: int = 8,
        max_wait_ms: float = 2.0,
        on_batch: Callable[[int, float], None] | None = None,
    ) -> None:
        self._infer = infer
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000.0
        self._on_batch = on_batch or (lambda size, seconds: None)
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._expected = 0  # requests decoding now that will submit soon
        self._arrived = asyncio.Event()  # a job was queued or an expected request gave up
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="infer")
        self._task: asyncio.Task[None] | None = None
        self.seconds_per_image = 0.0  # moving average of inference time per image, to drop jobs that would be late

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="micro-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        while not self._queue.empty():
            job = self._queue.get_nowait()
            if not job.future.done():
                job.future.set_exception(RuntimeError("the service is shutting down"))
        self._executor.shutdown(wait=True)

    @contextmanager
    def expect(self, n: int = 1) -> Iterator[None]:
        """Mark ``n`` requests as on their way, so a partial batch is worth a short wait."""
        self._expected += n
        try:
            yield
        finally:
            self._expected -= n
            self._arrived.set()

    async def submit(self, tensor: np.ndarray, deadline: float | None = None) -> Inferred:
        """One (C, H, W) tensor in, its row of the model's output (and what the call cost) out.

        A job that would finish past ``deadline`` (``time.monotonic()``), at the recent inference
        pace, is dropped with ``DeadlineExceeded``; a cancelled caller's job (its client left) is
        dropped too: no inference is spent on either.
        """
        future: asyncio.Future[Inferred] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Job(tensor, future, deadline))
        self._arrived.set()
        return await future

    async def _run(self) -> None:
        while True:
            jobs = await self._collect()
            await self._dispatch(jobs)

    async def _collect(self) -> list[_Job]:
        jobs = [await self._queue.get()]
        deadline = time.monotonic() + self.max_wait
        while len(jobs) < self.max_batch_size:
            if not self._queue.empty():
                jobs.append(self._queue.get_nowait())
                continue
            remaining = deadline - time.monotonic()
            if self._expected <= 0 or remaining <= 0:
                break
            self._arrived.clear()
            try:  # waiting on an event, not on queue.get, so a timeout can never drop a job
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                pass
        return jobs

    def _stack_and_infer(self, tensors: list[np.ndarray]) -> np.ndarray:
        return self._infer(np.stack(tensors))  # (N, C, H, W): even the copy stays off the event loop

    def _drop_late(self, jobs: list[_Job]) -> list[_Job]:
        """Fail the jobs that would finish past their deadline (at the recent pace); keep the rest."""
        jobs = [j for j in jobs if not j.future.done()]
        finish = time.monotonic() + self.seconds_per_image * len(jobs)
        for j in jobs:
            if j.deadline is not None and j.deadline < finish:
                j.future.set_exception(DeadlineExceeded())
        return [j for j in jobs if not j.future.done()]

    async def _dispatch(self, jobs: list[_Job]) -> None:
        jobs = self._drop_late(jobs)
        if not jobs:
            return
        tensors = [j.tensor for j in jobs]
        start = time.perf_counter()
        try:
            out = await asyncio.get_running_loop().run_in_executor(self._executor, self._stack_and_infer, tensors)
        except Exception as exc:  # noqa: BLE001 - every waiter must hear about it
            for j in jobs:
                if not j.future.done():
                    j.future.set_exception(exc)
            return
        seconds = time.perf_counter() - start
        sample = seconds / len(jobs)
        self.seconds_per_image = sample if not self.seconds_per_image else 0.8 * self.seconds_per_image + 0.2 * sample
        self._on_batch(len(jobs), seconds)
        for i, j in enumerate(jobs):
            if not j.future.done():
                j.future.set_result(Inferred(out[i], seconds, len(jobs)))
