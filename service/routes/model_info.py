"""GET /v1/model: what the served model expects and how it was made, from its own metadata."""

from __future__ import annotations

from fastapi import APIRouter, Request

from core.imaging import ALLOWED_FORMATS
from service.deps import Authorized, ModelDep, SettingsDep
from service.schemas import ERROR_RESPONSES, CalibrationInfo, InputInfo, ModelInfo, PreprocessInfo, ServingInfo

router = APIRouter(tags=["model"], dependencies=[Authorized], responses=ERROR_RESPONSES)


@router.get("/v1/model")
def describe_model(model: ModelDep, settings: SettingsDep, request: Request) -> ModelInfo:
    """Labels, input spec, preprocessing, version, training, parity and calibration figures, serving limits."""
    c, meta = model.contract, model.contract.model
    plan = request.app.state.instances.plan
    return ModelInfo(
        name=meta.get("name"),
        version=meta.get("version"),
        arch=meta.get("arch"),
        created=meta.get("created"),
        precision=model.precision,
        opset=model.opset,
        file=model.path.name,
        sha256=model.sha256,
        labels=list(c.labels),
        input=InputInfo(**c.input.to_dict(), channels=c.input.channels),
        preprocess=PreprocessInfo(**c.preprocess.to_dict()),
        training=c.training,
        parity=c.parity,
        calibration=CalibrationInfo(
            calibrated=c.calibration is not None,
            temperature=c.temperature,
            figures=c.calibration.to_dict() if c.calibration is not None else {},
        ),
        serving=ServingInfo(
            max_upload_bytes=settings.max_upload_bytes,
            max_pixels=settings.max_pixels,
            max_batch_items=settings.max_batch_items,
            max_batch_size=settings.max_batch_size,
            batch_wait_ms=settings.batch_wait_ms,
            intra_op_threads=max(plan.instance_threads),
            jpeg_draft=settings.jpeg_draft,
            default_top_k=settings.default_top_k,
            min_confidence=settings.min_confidence,
            url_input=bool(settings.url_allowed_hosts.strip()),
            formats=list(ALLOWED_FORMATS),
            load_seconds=round(model.load_seconds, 3),
            warmup_seconds=round(model.warmup_seconds, 3),
            cpus=plan.cpus,
            instance_threads=list(plan.instance_threads),
            latency_session_threads=plan.latency_threads,
            decode_threads=plan.decoders,
        ),
    )
