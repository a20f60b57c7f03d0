"""The ASGI app: ``service.app:app``. The model loads in the lifespan, never at import."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.concurrency import run_in_threadpool

from core.imaging import DecodeOptions
from core.model import LoadedModel
from service.batcher import MicroBatcher
from service.errors import install_error_handlers
from service.fetch import UrlFetcher, UrlPolicy
from service.guards import install_admission, install_outer_guards
from service.instances import Instances, open_instances
from service.lanes import DecodeLanes
from service.memory import MemoryBudget
from service.metrics import Metrics, MetricsMiddleware
from service.predictor import Predictor
from service.process_metrics import register_process_metrics
from service.request_id import RequestIdMiddleware
from service.routes import health, metrics, model_info, page, predict, preview, v2
from service.routes.docs import install_docs
from service.settings import Settings
from service.startup import describe, startup_fields
from service.tracing import Tracing

log = logging.getLogger("service")


def build_predictor(
    model: LoadedModel, settings: Settings, metrics_: Metrics, budget: MemoryBudget, instances: Instances | None = None
) -> Predictor:
    """The serving path on ``instances`` (every session of the plan), or on ``model`` alone."""
    options = DecodeOptions(
        max_pixels=settings.max_pixels,
        draft_shorter=model.contract.preprocess.resize_shorter if settings.jpeg_draft else None,
    )
    models, latency = (instances.models, instances.latency) if instances else ([model], None)
    batcher = MicroBatcher(
        [m.probabilities for m in models],
        settings.max_batch_size,
        settings.batch_wait_ms,
        on_batch=metrics_.observe_batch,
        latency=latency.probabilities if latency else None,
        on_instance=metrics_.observe_instance,
    )
    decoders = instances.plan.decoders if instances else settings.decoders
    lanes = DecodeLanes(decoders, settings.large_image_pixels, budget)
    return Predictor(model, options, lanes, batcher, metrics_)


def create_app(
    settings: Settings | None = None, tracing: Tracing | None = None, instances: Instances | None = None
) -> FastAPI:
    """Build the app; ``settings`` default to the environment, read once, here.

    ``tracing`` defaults to OTLP export when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, else none.
    ``instances``: the model's sessions, already opened, checked and warmed up (``python -m
    service`` opens them first, to refuse an unusable file in one line); otherwise the
    lifespan opens them.
    """
    settings = settings or Settings()
    tracing = tracing or Tracing.from_settings(settings)
    metrics_ = Metrics()
    register_process_metrics(metrics_.registry)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        s = settings
        app.state.ready = False
        opened: Instances = instances if instances is not None else await run_in_threadpool(open_instances, s)
        served = app.state.model = opened.model
        app.state.instances = opened
        app.state.admission.seed(served.warmup_seconds / max(1, s.warmup_rounds))
        app.state.predictor = predictor = build_predictor(served, s, metrics_, app.state.memory, opened)
        predictor.batcher.start()
        app.state.ready = True
        log.info("%s", describe(served, s, opened.plan), extra={"fields": startup_fields(served, s, opened.plan)})
        try:
            yield
        finally:
            app.state.ready = False
            await predictor.batcher.stop()
            predictor.close()
            tracing.shutdown()

    app = FastAPI(
        title="Image classifier",
        version="0.2.0",
        description="Send an image in any common format and form; get the top-k labels as JSON.",
        lifespan=lifespan,
        docs_url=None,  # /docs and /redoc come from service/routes/docs.py, without a CDN
        redoc_url=None,
        telemetry=tracing.fastapi_telemetry(),
    )
    app.state.ready = False
    app.state.settings = settings
    app.state.metrics = metrics_
    app.state.fetcher = UrlFetcher(UrlPolicy.from_settings(settings))
    install_error_handlers(app)
    install_admission(app, settings, metrics_)
    origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
    if origins:  # no cookies are used, so credentials stay off; the API key travels in a header
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "X-API-Key", "Authorization", "X-Request-ID", "traceparent"],
            expose_headers=["X-Request-ID"],
            max_age=600,
        )
    install_outer_guards(app, metrics_)
    app.add_middleware(MetricsMiddleware, metrics=metrics_)
    app.add_middleware(RequestIdMiddleware, tracer=tracing)  # outermost: every line and answer gets the id
    for module in (page, health, metrics, model_info, predict, preview, v2):
        app.include_router(module.router)
    install_docs(app)
    return app


app = create_app()
