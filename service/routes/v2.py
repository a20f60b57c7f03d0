"""Open Inference Protocol v2 over HTTP/REST, on the same port: Triton's and KServe's clients call us as is.

Encoded images (BYTES) take the same path as /predict: the same decode rule,
limits and micro-batcher; preprocessed FP32 tensors go straight to the
micro-batcher. Probabilities are the calibrated ones /predict reports.
Refusals are ``{"error": "<message>"}`` (``service.errors`` formats every /v2 path so).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import numpy as np
from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from core.errors import ClassifierError
from core.model import LoadedModel
from service.deps import Authorized, ModelDep, PredictorDep, SettingsDep
from service.errors import ApiError, status_of
from service.predictor import Predictor
from service.upload import read_limited
from service.v2_protocol import (
    EXTENSIONS,
    HEADER_LENGTH,
    IMAGE_INPUT,
    InferRequest,
    encode_response,
    image_elements,
    output_tensor,
    parse_request,
    tensor_batch,
    tensor_metadata,
)

router = APIRouter(tags=["open inference protocol v2"])
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"description": text, "content": {"application/json": {"example": {"error": "..."}}}}
    for code, text in {
        400: "malformed request or image",
        401: "API key missing",
        404: "no such model or version",
        503: "still loading",
    }.items()
}


INFER_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "example": {
                    "inputs": [{"name": IMAGE_INPUT, "datatype": "BYTES", "shape": [1], "data": ["<base64 image>"]}],
                    "outputs": [{"name": "probabilities", "parameters": {"classification": 3}}],
                }
            },
            "application/octet-stream": {
                "schema": {"type": "string", "format": "binary"},
                "description": "binary tensor data extension: the JSON (Inference-Header-Content-Length bytes), "
                "then each input's bytes; BYTES elements as <uint32 LE length><bytes>",
            },
        },
    }
}


def served_name(model: LoadedModel) -> str:
    return str(model.contract.model.get("name") or model.path.parent.name or "model")


def served_version(model: LoadedModel) -> str:
    return str(model.contract.model.get("version") or "1")


def check_model(model: LoadedModel, name: str, version: str | None) -> None:
    """404 unless the path names the served model (and, if given, its version)."""
    if name != served_name(model):
        raise ApiError(
            404, "model_not_found", f"model {name!r} is not served here; this server serves {served_name(model)!r}"
        )
    if version is not None and version != served_version(model):
        raise ApiError(404, "model_not_found", f"model {name!r} has version {served_version(model)!r}, not {version!r}")


@router.get("/v2")
def server_metadata(request: Request) -> dict[str, Any]:
    """Server name, version and protocol extensions."""
    return {"name": "image-classifier", "version": request.app.version, "extensions": EXTENSIONS}


@router.get("/v2/health/live")
def server_live() -> dict[str, bool]:
    """Liveness: 200 as soon as the process answers (KServe's client reads the body, Triton's the status)."""
    return {"live": True}


@router.get("/v2/health/ready", responses=ERRORS)
def server_ready(request: Request) -> dict[str, bool]:
    """Readiness: 200 once the model is loaded and warmed up (503 while loading, or draining for shutdown)."""
    drain = getattr(request.app.state, "drain", None)
    if drain is not None and drain.draining:
        raise ApiError(503, "draining", "the service is shutting down; send new requests elsewhere")
    if not getattr(request.app.state, "ready", False):
        raise ApiError(503, "not_ready", "the model is still loading", {"Retry-After": "1"})
    return {"ready": True}


@router.get("/v2/models/{name}/ready", responses=ERRORS)
@router.get("/v2/models/{name}/versions/{version}/ready", responses=ERRORS, include_in_schema=False)
def model_ready(model: ModelDep, name: str, version: str | None = None) -> dict[str, Any]:
    """200 when this model is ready (503 while loading, 404 for another name)."""
    check_model(model, name, version)
    return {"name": name, "ready": True}


@router.get("/v2/models/{name}", dependencies=[Authorized], responses=ERRORS)
@router.get("/v2/models/{name}/versions/{version}", dependencies=[Authorized], responses=ERRORS)
def model_metadata(model: ModelDep, name: str, version: str | None = None) -> dict[str, Any]:
    """Inputs (send one: `image` BYTES of encoded files, or the FP32 preprocessed tensor) and outputs."""
    check_model(model, name, version)
    inputs, outputs = tensor_metadata(model.contract)
    return {
        "name": served_name(model),
        "versions": [served_version(model)],
        "platform": "onnxruntime_onnx",
        "inputs": inputs,
        "outputs": outputs,
    }


async def probabilities(req: InferRequest, predictor: Predictor, max_items: int) -> np.ndarray:
    """(N, K) probabilities for the request's one input, through the same path as /predict."""
    if len(req.inputs) != 1:
        names = [t.name for t in req.inputs]
        raise ApiError(400, "invalid_inference_request", f"send exactly one input, got {names}")
    (t,) = req.inputs
    contract = predictor.model.contract
    if t.name == IMAGE_INPUT:
        items = await run_in_threadpool(image_elements, t, max_items)
        jobs: list[Awaitable[Any]] = [predictor.infer_image(data) for data in items]
    elif t.name == contract.input.name:
        batch = await run_in_threadpool(tensor_batch, t, contract, max_items)
        jobs = [predictor.infer_tensor(row) for row in batch]
    else:
        raise ApiError(
            400,
            "invalid_inference_request",
            f"unknown input {t.name!r}; send {IMAGE_INPUT!r} or {contract.input.name!r}",
        )
    rows: list[np.ndarray] = []
    for i, r in enumerate(await asyncio.gather(*jobs, return_exceptions=True)):
        if isinstance(r, ClassifierError):  # the protocol has no per-element errors: the request fails, saying which
            raise ApiError(status_of(r), r.code, f"input {t.name!r} element {i}: {r.message}")
        if isinstance(r, BaseException):
            raise r
        rows.append(r[0] if isinstance(r, tuple) else r)
    return np.stack(rows)


@router.post("/v2/models/{name}/infer", dependencies=[Authorized], responses=ERRORS, openapi_extra=INFER_BODY)
@router.post(
    "/v2/models/{name}/versions/{version}/infer", dependencies=[Authorized], responses=ERRORS, openapi_extra=INFER_BODY
)
async def infer(
    request: Request, predictor: PredictorDep, settings: SettingsDep, name: str, version: str | None = None
) -> Response:
    """Inference: JSON tensors, or JSON + raw bytes (binary tensor data extension); classification extension."""
    model = predictor.model
    check_model(model, name, version)
    body = await read_limited(request, settings.max_upload_bytes)
    req = await run_in_threadpool(parse_request, body, request.headers.get(HEADER_LENGTH))
    probs = await probabilities(req, predictor, settings.max_batch_items)
    outputs = [output_tensor(want, probs, model.contract.labels) for want in req.outputs]
    head: dict[str, Any] = {"model_name": served_name(model), "model_version": served_version(model)}
    if req.id is not None:
        head["id"] = req.id
    head["parameters"] = {
        "calibrated": model.contract.calibration is not None,
        "temperature": model.contract.temperature,
    }
    content, headers = encode_response(head, outputs)
    return Response(content=content, headers=headers)
