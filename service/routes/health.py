"""Liveness and readiness for load balancers and orchestrators."""

from __future__ import annotations

from fastapi import APIRouter, Request

from service.errors import ApiError
from service.schemas import Health, Readiness, Refusal

router = APIRouter(tags=["health"])


@router.get("/healthz")
def live() -> Health:
    """Liveness: the process answers."""
    return Health(status="ok")


@router.get("/readyz", responses={503: {"model": Refusal, "description": "still loading, or draining"}})
def ready(request: Request) -> Readiness:
    """Readiness: the model is loaded and warmed up, and the service is not draining for shutdown."""
    drain = getattr(request.app.state, "drain", None)
    if drain is not None and drain.draining:
        raise ApiError(503, "draining", "the service is shutting down; send new requests elsewhere")
    if not getattr(request.app.state, "ready", False):
        raise ApiError(503, "not_ready", "the model is still loading", {"Retry-After": "1"})
    model = request.app.state.model
    return Readiness(
        status="ready",
        model=model.contract.model.get("name"),
        load_seconds=round(model.load_seconds, 3),
        warmup_seconds=round(model.warmup_seconds, 3),
    )
