"""A memory budget: request bodies and decoded pixels are paid for before they are held.

Without it the process's peak memory is whatever the current mix of requests
costs: 96 near-limit base64 bodies, or eight 40 MP RGBA PNGs on a 16-core host,
take gigabytes. Every body is charged as it arrives (its declared length up
front) and every decode is charged ``core.imaging.decode_cost`` (read from the
header) before a pixel is decoded. A charge that does not fit waits, in the
order that lets the most requests through (any waiter that fits goes first,
so a small image never waits behind a huge one), until its request's deadline;
one larger than the whole budget is refused at once. The process's peak RSS is
then its baseline (interpreter, onnxruntime, the model) plus at most
``MEMORY_BUDGET_BYTES``.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from pathlib import Path
from typing import Protocol

from service.errors import ApiError, Overloaded
from service.metrics import Metrics
from service.process_metrics import memory_limit as cgroup_memory_limit

CGROUP = Path("/sys/fs/cgroup")
# A body is held as it arrives and once more as the form it is parsed into (the bytes of a raw
# body, the file of a multipart one, the text of a JSON one), so it costs twice its size.
BODY_COPIES = 2
_AUTO_CAP = 2 * 1024**3  # the automatic budget never exceeds 2 GiB
_AUTO_FLOOR = 256 * 1024**2


def memory_limit(root: Path = CGROUP) -> int:
    """Bytes this process may use: the cgroup limit (``process_metrics``), else the machine's RAM."""
    limit = cgroup_memory_limit(root)
    return int(limit) if math.isfinite(limit) else os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def auto_budget(limit: int | None = None) -> int:
    """Half the memory limit (the rest is the model, onnxruntime and Python), between 256 MiB and 2 GiB."""
    limit = memory_limit() if limit is None else limit
    return max(_AUTO_FLOOR, min(limit // 2, _AUTO_CAP))


class MemoryBudget:
    """Bytes that may be held at once by admitted bodies and decodes; ``reserve`` waits or refuses.

    Bodies may hold at most ``BODY_SHARE`` of it: the rest is always there for the decodes that
    let those bodies finish, so a crowd of large uploads cannot starve every decode until its deadline.
    """

    BODY_SHARE = 0.6

    def __init__(self, total: int, metrics: Metrics | None = None) -> None:
        self.total = total
        self.body_cap = int(total * self.BODY_SHARE)
        self.in_use = self.bodies = 0
        self._waiters: list[tuple[int, bool, asyncio.Future[None]]] = []
        self._metrics = metrics
        if metrics is not None:
            metrics.memory_budget.set(total)

    def fits(self, n: int, body: bool = False) -> bool:
        return self.in_use + n <= self.total and (not body or self.bodies + n <= self.body_cap)

    async def reserve(self, n: int, deadline: float | None, what: str = "this request", body: bool = False) -> None:
        """Hold ``n`` bytes; wait (until ``deadline``, a ``time.monotonic()``) while they do not fit."""
        if n > (self.body_cap if body else self.total):
            raise ApiError(
                413,
                "too_large_for_memory",
                f"{what} would need about {n / 2**20:,.0f} MiB; the server's memory budget is "
                f"{self.total / 2**20:,.0f} MiB (MEMORY_BUDGET_BYTES). Send a smaller image or body.",
            )
        if self.fits(n, body):  # even past waiters that do not fit: a huge image never holds up a small one
            self._take(n, body)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (n, body, future)
        self._waiters.append(entry)
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            await asyncio.wait_for(future, timeout)
        except BaseException as exc:  # timed out or cancelled (the client left): take nothing away
            if entry in self._waiters:
                self._waiters.remove(entry)
            if future.done() and not future.cancelled():
                self.release(n, body)  # granted in the same instant it gave up: hand it back
            if isinstance(exc, TimeoutError):
                raise Overloaded("memory", f"{what} waited for memory past its deadline (REQUEST_TIMEOUT_S)") from None
            raise

    def release(self, n: int, body: bool = False) -> None:
        self.in_use -= n
        if body:
            self.bodies -= n
        self._grant()
        self._publish()

    def _take(self, n: int, body: bool) -> None:
        self.in_use += n
        if body:
            self.bodies += n
        self._publish()

    def _grant(self) -> None:
        """Wake every waiter that now fits, oldest first; a big one does not block smaller ones behind it."""
        for entry in list(self._waiters):
            n, body, future = entry
            if future.done():
                self._waiters.remove(entry)
            elif self.fits(n, body):
                self._waiters.remove(entry)
                self._take(n, body)
                future.set_result(None)

    def _publish(self) -> None:
        if self._metrics is not None:
            self._metrics.memory_in_use.set(self.in_use)


class HasDeadline(Protocol):
    deadline: float  # time.monotonic(); it may move (the admission ticket excludes the body's sending time)


class Account:
    """One request's share of the budget (its body, its tensors), released whole when the request ends."""

    def __init__(self, budget: MemoryBudget, owner: HasDeadline) -> None:
        self.budget, self.owner = budget, owner
        self.held = self.body = 0  # all it holds; of which bodies (and fetched images)

    async def reserve(self, n: int, what: str = "this request") -> None:
        await self.budget.reserve(n, self.owner.deadline, what)
        self.held += n

    async def reserve_body(self, n: int, what: str = "this request's body") -> None:
        await self.budget.reserve(n, self.owner.deadline, what, body=True)
        self.held += n
        self.body += n

    def settle_body(self, still_held: int) -> None:
        """The body is parsed: only ``still_held`` bytes of it (the images) remain; give back the rest."""
        extra = self.body - still_held
        if extra > 0:
            self.budget.release(extra, body=True)
            self.body -= extra
            self.held -= extra

    def close(self) -> None:
        if self.held:
            self.budget.release(self.body, body=True)
            if self.held > self.body:
                self.budget.release(self.held - self.body)
            self.held = self.body = 0
