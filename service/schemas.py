"""The public JSON shapes, as pydantic models: they validate answers and document OpenAPI."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ScoredLabel(BaseModel):
    label: str
    score: float = Field(description="probability, 0..1")


class ModelRef(BaseModel):
    name: str | None
    version: str | None


class Prediction(BaseModel):
    label: str = Field(description="the most likely label")
    confidence: float = Field(description="its probability, 0..1 (a JSON number)")
    top_k: list[ScoredLabel]
    model: ModelRef
    timing_ms: dict[str, float] = Field(description="decode, preprocess, inference (incl. batching wait), total")


class ErrorDetail(BaseModel):
    code: str = Field(description="machine-readable, e.g. undecodable_image, payload_too_large")
    message: str = Field(description="what to fix, for a person")


class ErrorBody(BaseModel):
    error: ErrorDetail


class ImageJSON(BaseModel):
    image: str = Field(description="base64 (standard or URL-safe) or a data: URI such as data:image/png;base64,...")


class BatchJSON(BaseModel):
    images: list[str] = Field(description="base64 strings or data: URIs, answered in this order")


class InputInfo(BaseModel):
    name: str
    color: str = Field(description="RGB or L (grayscale): every image is converted to it")
    channels: int
    height: int
    width: int
    layout: str
    dtype: str


class PreprocessInfo(BaseModel):
    """torchvision's eval transform, as the model's metadata states it."""

    resize_shorter: int = Field(description="the shorter side is resized to this (bilinear, antialiased)")
    crop: list[int] = Field(description="centre crop [height, width]")
    interpolation: str
    scale: float = Field(description="pixel values are multiplied by this (1/255) before normalising")
    mean: list[float]
    std: list[float]


class ServingInfo(BaseModel):
    max_upload_bytes: int
    max_pixels: int
    max_batch_items: int
    max_batch_size: int
    batch_wait_ms: float
    intra_op_threads: int
    jpeg_draft: bool
    default_top_k: int
    formats: list[str] = Field(description="image formats the decoder accepts, detected from the bytes")
    load_seconds: float
    warmup_seconds: float


class ModelInfo(BaseModel):
    name: str | None
    version: str | None
    arch: str | None
    created: str | None
    labels: list[str]
    input: InputInfo
    preprocess: PreprocessInfo
    training: dict[str, Any]
    parity: dict[str, Any]
    serving: ServingInfo


class Health(BaseModel):
    status: str = Field(description="always ok: the process answers")


class Readiness(BaseModel):
    status: str = Field(description="ready once the model is loaded and warmed up")
    model: str | None
    load_seconds: float
    warmup_seconds: float


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "undecodable or truncated image, bad base64, malformed body"},
    401: {"model": ErrorBody, "description": "API_KEY is set and the request lacks X-API-Key / Bearer token"},
    413: {"model": ErrorBody, "description": "body over MAX_UPLOAD_BYTES, or image over MAX_PIXELS"},
    415: {"model": ErrorBody, "description": "not an image (SVG, PDF, HTML, random bytes...)"},
    422: {"model": ErrorBody, "description": "bad parameters (top_k, JSON shape, too many images)"},
    503: {"model": ErrorBody, "description": "the model is still loading or warming up"},
}


def _binary() -> dict[str, Any]:
    return {"schema": {"type": "string", "format": "binary"}}


def predict_request_body() -> dict[str, Any]:
    """/predict's three body forms, for OpenAPI (the route reads the body itself)."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {
                            "file": {
                                "type": "string",
                                "format": "binary",
                                "description": "the image; any single file field name is accepted",
                            }
                        },
                    }
                },
                "image/*": _binary(),
                "application/octet-stream": _binary(),
                "application/json": {"schema": ImageJSON.model_json_schema()},
            },
        }
    }


def batch_request_body() -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "files": {
                                "type": "array",
                                "items": {"type": "string", "format": "binary"},
                                "description": "the images, any field names, answered in order",
                            }
                        },
                    }
                },
                "application/json": {"schema": BatchJSON.model_json_schema()},
            },
        }
    }
