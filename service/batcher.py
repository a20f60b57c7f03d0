"""Micro-batching: concurrent requests share one onnxruntime call.

One worker task owns the model. It takes the first waiting tensor, then any
that are already queued, up to ``max_batch_size``. It waits up to
``max_wait_ms`` for more only while other requests are still decoding (they
announce themselves with ``expect``), so a lone request is never delayed and a
burst fills the batch. Inference runs on dedicated threads: the event loop
stays free and onnxruntime's own intra-op threads are the only compute threads.

With several inference instances (``core.sizing``), each instance has its own
batch in flight: the worker hands a batch to whichever instance is idle, shares
what is queued among idle instances instead of waiting for company, and waits
(as above) only for the last idle one. When every instance is idle and a
request is alone, the optional latency session, spanning all their cores, runs
it, so low load keeps the single-session latency.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Sequence
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
        infer: Infer | Sequence[Infer],
        max_batch_size: int = 8,
        max_wait_ms: float = 2.0,
        on_batch: Callable[[int, float], None] | None = None,
        latency: Infer | None = None,
        on_instance: Callable[[str], None] | None = None,
    ) -> None:
        """``infer``: one model, or one per instance; ``latency``: a session on all their cores for lone requests."""
        self._instances: list[Infer] = [infer] if callable(infer) else list(infer)
        self._latency = latency if len(self._instances) > 1 else None
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000.0
        self._on_batch = on_batch or (lambda size, seconds: None)
        self._on_instance = on_instance or (lambda name: None)
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._expected = 0  # requests decoding now that will submit soon
        self._arrived = asyncio.Event()  # a job was queued or an expected request gave up
        self._idle = list(range(len(self._instances)))[::-1]  # instances with no batch in flight
        self._freed = asyncio.Event()  # an instance finished its batch
        self._in_flight: set[asyncio.Task[None]] = set()
        self._executor = ThreadPoolExecutor(max_workers=len(self._instances), thread_name_prefix="infer")
        self._task: asyncio.Task[None] | None = None
        self.seconds_per_image = 0.0  # moving average of inference time per image, to drop jobs that would be late

    @property
    def instances(self) -> int:
        """Inference instances, each with at most one batch in flight."""
        return len(self._instances)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="micro-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await asyncio.gather(*self._in_flight, return_exceptions=True)  # batches in flight finish and answer
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
            while not self._idle:
                self._freed.clear()
                await self._freed.wait()
            jobs = [j for j in await self._collect(len(self._idle)) if not j.future.cancelled()]
            if not jobs:
                continue
            if self._latency is not None and self._alone():
                self._on_instance("latency")
                await self._dispatch(jobs, self._latency)  # inline: no instance may start meanwhile
                continue
            index = self._idle.pop()
            task = asyncio.get_running_loop().create_task(self._dispatch_on(index, jobs))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

    def _alone(self) -> bool:
        """No batch in flight, nothing queued, nobody decoding: this batch may have every core."""
        return len(self._idle) == len(self._instances) and self._queue.empty() and self._expected <= 0

    async def _collect(self, idle: int) -> list[_Job]:
        jobs = [await self._queue.get()]
        if idle > 1:  # other instances are idle too: share what is queued rather than wait for company
            share = min(self.max_batch_size, -(-(1 + self._queue.qsize()) // idle))
            while len(jobs) < share and not self._queue.empty():
                jobs.append(self._queue.get_nowait())
            return jobs
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

    async def _dispatch_on(self, index: int, jobs: list[_Job]) -> None:
        self._on_instance(str(index))
        try:
            await self._dispatch(jobs, self._instances[index])
        finally:
            self._idle.append(index)
            self._freed.set()

    def _drop_late(self, jobs: list[_Job]) -> list[_Job]:
        """Fail the jobs that would finish past their deadline (at the recent pace); keep the rest."""
        jobs = [j for j in jobs if not j.future.done()]
        finish = time.monotonic() + self.seconds_per_image * len(jobs)
        for j in jobs:
            if j.deadline is not None and j.deadline < finish:
                j.future.set_exception(DeadlineExceeded())
        return [j for j in jobs if not j.future.done()]

    async def _dispatch(self, jobs: list[_Job], infer: Infer) -> None:
        jobs = self._drop_late(jobs)
        if not jobs:
            return
        start = time.perf_counter()
        try:
            out = await asyncio.get_running_loop().run_in_executor(
                self._executor, lambda: infer(np.stack([j.tensor for j in jobs]))
            )  # (N, C, H, W): even the copy stays off the event loop
        except BaseException as exc:  # noqa: BLE001 - every waiter must hear about it, even on shutdown
            for j in jobs:
                if not j.future.done():
                    j.future.set_exception(exc if isinstance(exc, Exception) else RuntimeError("inference cancelled"))
            if not isinstance(exc, Exception):
                raise
            return
        seconds = time.perf_counter() - start
        sample = seconds / len(jobs)
        self.seconds_per_image = sample if not self.seconds_per_image else 0.8 * self.seconds_per_image + 0.2 * sample
        self._on_batch(len(jobs), seconds)
        for i, j in enumerate(jobs):
            if not j.future.done():
                j.future.set_result(Inferred(out[i], seconds, len(jobs)))
