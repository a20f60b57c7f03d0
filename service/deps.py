"""Request dependencies, as ``Annotated`` aliases so route signatures stay short."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Query, Request

from core.model import LoadedModel
from service.errors import ApiError
from service.fetch import UrlFetcher
from service.predictor import Predictor
from service.settings import Settings


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def require_api_key(request: Request) -> None:
    """401 unless the request carries API_KEY as ``X-API-Key`` or ``Authorization: Bearer``.

    A non-empty ``X-API-Key`` is the one checked; an empty or absent one defers to the Bearer token.
    """
    expected = request.app.state.settings.api_key
    if expected is None:
        return
    given = request.headers.get("x-api-key", "").strip() or None
    if given is None:
        scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
        given = token.strip() if scheme.lower() == "bearer" and token.strip() else None
    if given is None or not hmac.compare_digest(given.encode(), expected.encode()):
        raise ApiError(
            401,
            "unauthorized",
            "send the API key as X-API-Key: KEY or Authorization: Bearer KEY",
            {"WWW-Authenticate": "Bearer"},
        )


def get_model(request: Request) -> LoadedModel:
    """The loaded model, or 503 while it is still loading or warming up."""
    model = getattr(request.app.state, "model", None)
    if model is None or not request.app.state.ready:
        raise ApiError(503, "not_ready", "the model is still loading; retry in a moment", {"Retry-After": "1"})
    return model


def get_predictor(request: Request, _: Annotated[LoadedModel, Depends(get_model)]) -> Predictor:
    return request.app.state.predictor


def get_top_k(
    request: Request,
    model: Annotated[LoadedModel, Depends(get_model)],
    top_k: Annotated[int | None, Query(ge=1, description="how many labels to return; default DEFAULT_TOP_K")] = None,
) -> int:
    """``top_k`` from the query (422 past the number of labels), else the configured default."""
    n = len(model.contract.labels)
    if top_k is None:
        return min(request.app.state.settings.default_top_k, n)
    if top_k > n:
        raise ApiError(422, "invalid_parameters", f"top_k must be between 1 and {n} (the number of labels)")
    return top_k


def get_min_confidence(
    request: Request,
    min_confidence: Annotated[
        float | None,
        Query(ge=0, le=1, description='below this the answer is "unknown" (label null); default MIN_CONFIDENCE'),
    ] = None,
) -> float:
    return request.app.state.settings.min_confidence if min_confidence is None else min_confidence


def get_fetcher(request: Request) -> UrlFetcher:
    return request.app.state.fetcher


SettingsDep = Annotated[Settings, Depends(get_settings)]
ModelDep = Annotated[LoadedModel, Depends(get_model)]
PredictorDep = Annotated[Predictor, Depends(get_predictor)]
TopKDep = Annotated[int, Depends(get_top_k)]
MinConfidenceDep = Annotated[float, Depends(get_min_confidence)]
FetcherDep = Annotated[UrlFetcher, Depends(get_fetcher)]
Authorized = Depends(require_api_key)
