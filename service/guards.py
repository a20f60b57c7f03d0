"""Wiring of the protections (admission, memory budget, drain, security headers) into the app.

Starlette runs the last middleware added first; the order, from the outside in,
is: metrics (counts every answer, shed ones too) -> security headers ->
keep-alive (``Connection: close`` after an early answer or while draining) ->
CORS (so a shed 503 still carries its CORS headers) -> admission -> the routes.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI

from core.runtime import cpu_quota
from service.admission import Admission, AdmissionMiddleware
from service.connections import KeepAliveMiddleware
from service.drain import Drain
from service.memory import MemoryBudget, auto_budget
from service.metrics import Metrics
from service.security import SecurityHeadersMiddleware
from service.settings import Settings

log = logging.getLogger("service")


def in_flight(settings: Settings) -> int:
    """MAX_IN_FLIGHT, or enough to fill two micro-batches and keep every core busy."""
    return settings.max_in_flight or max(2 * settings.max_batch_size, 4 * (settings.cpus or cpu_quota()))


def install_admission(app: FastAPI, settings: Settings, metrics: Metrics) -> None:
    """The innermost guard: admission and the memory budget (``app.state.admission``, ``app.state.memory``)."""
    capacity = in_flight(settings)
    app.state.admission = admission = Admission(capacity, settings.max_queue or 4 * capacity, metrics)
    app.state.memory = budget = MemoryBudget(settings.memory_budget_bytes or auto_budget(), metrics)
    if budget.total < 2 * settings.max_upload_bytes:
        log.warning(
            "MEMORY_BUDGET_BYTES (%d) is under twice MAX_UPLOAD_BYTES (%d): bodies near the limit will get 413",
            budget.total,
            settings.max_upload_bytes,
        )
    app.add_middleware(
        AdmissionMiddleware,
        admission=admission,
        budget=budget,
        timeout_s=settings.request_timeout_s,
        is_ready=lambda: bool(getattr(app.state, "ready", False)),
        metrics=metrics,
    )


def install_outer_guards(app: FastAPI, metrics: Metrics) -> None:
    """Keep-alive decisions and security headers, outside CORS, inside the metrics (``app.state.drain``)."""
    app.state.drain = drain = Drain(metrics)
    app.add_middleware(KeepAliveMiddleware, drain=drain)
    app.add_middleware(SecurityHeadersMiddleware)
