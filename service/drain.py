"""A clean exit on SIGTERM: readiness turns 503 first, requests in flight finish, then a bounded exit.

uvicorn closes its listener the moment SIGTERM arrives, so a load balancer
still sending traffic gets refused connections and ``/readyz`` never answers
503. Here the first SIGTERM (or SIGINT) only starts a drain: for
``DRAIN_SECONDS`` the service keeps serving, ``/readyz`` answers 503 so load
balancers and Kubernetes stop sending, and every answer carries
``Connection: close`` (``service.connections.KeepAliveMiddleware``) so
keep-alive clients reconnect elsewhere. Then uvicorn's
own shutdown runs, bounded by ``SHUTDOWN_TIMEOUT_S``: requests still in flight
after that are cancelled, whatever their clients do. A second signal skips
the rest of the drain.
"""

from __future__ import annotations

import logging
import time
from types import FrameType

import uvicorn

from service.metrics import Metrics

log = logging.getLogger("service")


class Drain:
    """Shared by the server (which starts it on a signal) and the app (readiness, ``Connection: close``)."""

    def __init__(self, metrics: Metrics | None = None) -> None:
        self.started_at: float | None = None
        self._metrics = metrics

    @property
    def draining(self) -> bool:
        return self.started_at is not None

    def start(self) -> None:
        if self.started_at is None:
            self.started_at = time.monotonic()
            if self._metrics is not None:
                self._metrics.draining.set(1)

    def elapsed(self) -> float:
        return 0.0 if self.started_at is None else time.monotonic() - self.started_at


class DrainingServer(uvicorn.Server):
    """uvicorn's server, with a drain period between the signal and its shutdown."""

    def __init__(self, config: uvicorn.Config, drain: Drain, drain_seconds: float) -> None:
        super().__init__(config)
        self.drain, self.drain_seconds = drain, drain_seconds
        self._announced = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.drain.draining or self.drain_seconds <= 0:
            super().handle_exit(sig, frame)
            return
        self.drain.start()  # logged from on_tick: a signal handler runs in whatever request's context is current

    async def on_tick(self, counter: int) -> bool:
        if self.drain.draining and not self._announced:
            self._announced = True
            log.info("draining for %.1fs after a signal (/readyz answers 503), then shutting down", self.drain_seconds)
        if self.drain.draining and self.drain.elapsed() >= self.drain_seconds:
            self.should_exit = True
        return await super().on_tick(counter)
