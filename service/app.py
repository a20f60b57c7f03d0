"""The ASGI app: ``service.app:app``. The model loads in the lifespan, never at import."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from service.errors import install_error_handlers
from service.model import load_model
from service.routes import health, predict
from service.settings import Settings

log = logging.getLogger("service")


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; ``settings`` default to the environment, read at startup."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings or Settings()
        app.state.ready = False
        s = app.state.settings
        model = await run_in_threadpool(load_model, s.model_path, s.threads, s.providers.split(","))
        await run_in_threadpool(model.warm_up)
        app.state.model, app.state.ready = model, True
        log.info("model %s ready (load %.2fs, warm-up %.2fs)", s.model_path, model.load_seconds, model.warmup_seconds)
        yield
        app.state.ready = False

    app = FastAPI(title="Image classifier", version="0.1.0", lifespan=lifespan)
    app.state.ready = False
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(predict.router)
    return app


app = create_app()
