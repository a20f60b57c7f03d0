"""Request dependencies, as ``Annotated`` aliases so route signatures stay short."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.errors import ApiError
from service.model import LoadedModel
from service.settings import Settings


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_model(request: Request) -> LoadedModel:
    """The loaded model, or 503 while it is still loading or warming up."""
    model = getattr(request.app.state, "model", None)
    if model is None or not request.app.state.ready:
        raise ApiError(503, "not_ready", "the model is still loading; retry in a moment", {"Retry-After": "1"})
    return model


SettingsDep = Annotated[Settings, Depends(get_settings)]
ModelDep = Annotated[LoadedModel, Depends(get_model)]
