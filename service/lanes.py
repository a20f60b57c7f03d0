"""Decoding in two lanes, each decode paid for from the memory budget before it starts.

With one decode pool, a 640x480 photo waits behind whatever 40 MP images came
first (6 s measured on the 2-core machine). Here the header is read first
(cheap), which gives the pixel count and ``decode_cost``; images above
``LARGE_IMAGE_PIXELS`` decode on their own pool (half as many threads, at
least one), everything else on the usual pool, so a small image waits at most
behind other small ones. A request first waits (until its deadline) for a
thread of its lane, then reserves the cost from the ``MemoryBudget``, so
memory is held only by decodes that run; it is returned when the decoding
thread finishes (not when the request is cancelled: the thread still holds the
pixels until then).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from PIL import Image

from core.contract import PreprocessSpec
from core.errors import ImageRejected, UndecodableImage
from core.imaging import DecodeOptions, decode_cost, load_opened, open_header, preprocess, to_color
from core.model import LoadedModel
from service import tracing
from service.admission import current_ticket
from service.errors import Overloaded
from service.memory import MemoryBudget
from service.predictor import Decoded

log = logging.getLogger("service")


def read_header(data: bytes, options: DecodeOptions, spec: PreprocessSpec) -> tuple[Image.Image, int]:
    """The image's header only (format, mode, size) and its ``decode_cost``; ``ImageRejected`` if not an image."""
    try:
        img = open_header(data, options)
        return img, decode_cost(img, spec)
    except Exception as exc:  # noqa: BLE001 - these bytes broke a decoder: the client's input, not a 500
        refused = exc
        if not isinstance(exc, ImageRejected):
            log.warning("decoder failed on client input", exc_info=exc)
            refused = UndecodableImage(f"the image could not be decoded: {type(exc).__name__}: {exc}")
    with tracing.span("decode"):  # refused from its header: the decode span carries the refusal's code
        raise refused


def decode_opened(model: LoadedModel, img: Image.Image, options: DecodeOptions, header_s: float) -> Decoded:
    """Decode and preprocess an image whose header was read (blocking; runs on a lane)."""
    t0 = time.perf_counter()
    image = (img.format, *img.size)
    try:
        with tracing.span("decode"):
            tracing.annotate(**{"image.format": image[0], "image.width": image[1], "image.height": image[2]})
            loaded = to_color(load_opened(img, options), model.contract.input.color)
        t1 = time.perf_counter()
        with tracing.span("preprocess"):
            tensor = preprocess(loaded, model.contract.preprocess)
    except ImageRejected:
        raise
    except Exception as exc:  # noqa: BLE001 - as above
        log.warning("decoder failed on client input", exc_info=exc)
        raise UndecodableImage(f"the image could not be decoded: {type(exc).__name__}: {exc}") from exc
    t2 = time.perf_counter()
    return Decoded(tensor, {"decode": (t1 - t0 + header_s) * 1e3, "preprocess": (t2 - t1) * 1e3}, image)


class _Lane:
    """Decoding threads and a semaphore of the same size: a request waits for a thread before it reserves memory."""

    def __init__(self, name: str, threads: int) -> None:
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)
        self.free = asyncio.Semaphore(threads)

    async def acquire(self, deadline: float | None) -> None:
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            await asyncio.wait_for(self.free.acquire(), timeout)
        except TimeoutError:
            raise Overloaded("deadline", "no decoder came free before the request's deadline; retry") from None


class DecodeLanes:
    """A pool for ordinary images and one for large ones, both behind the memory budget."""

    def __init__(self, threads: int, large_pixels: int, budget: MemoryBudget) -> None:
        self.large_pixels, self.budget = large_pixels, budget
        self._small = _Lane("decode", max(1, threads))
        self._large = _Lane("decode-large", max(1, threads // 2))

    def close(self) -> None:
        for lane in (self._small, self._large):
            lane.pool.shutdown(wait=False, cancel_futures=True)

    async def prepare(self, model: LoadedModel, data: bytes, options: DecodeOptions) -> Decoded:
        """Header, a decoder, memory, then the decode; raises ``ImageRejected``, ``Overloaded`` or 413."""
        ticket = current_ticket()
        deadline = None if ticket is None else ticket.deadline
        t0 = time.perf_counter()
        header = self._small.pool.submit(
            contextvars.copy_context().run, read_header, data, options, model.contract.preprocess
        )
        img, cost = await asyncio.wrap_future(header)  # reading a header takes microseconds to a millisecond
        opened = time.perf_counter() - t0
        w, h = img.size
        tensor_bytes = 4 * model.contract.input.channels * model.contract.input.height * model.contract.input.width
        if ticket is None or ticket.account is None:
            cost += tensor_bytes
        lane = self._large if w * h > self.large_pixels else self._small
        await lane.acquire(deadline)  # wait for a thread first: memory is held only by decodes that run
        reserved = 0
        try:
            await self.budget.reserve(cost, deadline, f"decoding this {w}x{h} {img.mode} image")
            reserved = cost
            if ticket is not None and ticket.account is not None:
                await ticket.account.reserve(tensor_bytes, "this image's tensor")  # held until the request ends
        except BaseException:
            if reserved:
                self.budget.release(reserved)
            lane.free.release()
            raise
        loop = asyncio.get_running_loop()
        # The decode thread runs in a copy of this request's context: its logs and spans know the request.
        future = lane.pool.submit(contextvars.copy_context().run, decode_opened, model, img, options, opened)

        def done(_: Future[Decoded]) -> None:  # when the thread lets go of the pixels, even if the request left
            self.budget.release(cost)
            lane.free.release()

        future.add_done_callback(lambda f: _on_loop(loop, done, f))
        return await asyncio.wrap_future(future)


def _on_loop(loop: asyncio.AbstractEventLoop, fn: Callable[..., Any], *args: Any) -> None:
    try:
        loop.call_soon_threadsafe(fn, *args)
    except RuntimeError:  # the loop closed while the thread finished (shutdown): nothing left to account
        pass
