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
    precision: str | None = Field(None, description="fp32, int8 or fp16, from the model's metadata")
    sha256: str = Field("", description="sha256 of the served file: tells two files of one run apart")


class Prediction(BaseModel):
    label: str | None = Field(description="the most likely label; null when its confidence is below min_confidence")
    confidence: float = Field(description="the top label's probability, 0..1 (a JSON number)")
    unknown: bool = Field(False, description="true when the confidence is below min_confidence (label is then null)")
    calibrated: bool = Field(
        False, description="true when the probabilities are temperature-scaled (fitted at export on the val split)"
    )
    top_k: list[ScoredLabel]
    model: ModelRef
    timing_ms: dict[str, float] = Field(description="decode, preprocess, inference (incl. batching wait), total")


class ErrorDetail(BaseModel):
    code: str = Field(description="machine-readable, e.g. undecodable_image, payload_too_large")
    message: str = Field(description="what to fix, for a person")


class ErrorBody(BaseModel):
    error: ErrorDetail


class BatchItem(BaseModel):
    """Which input a batch answer belongs to, as the client named it."""

    index: int = Field(description="position in the request, from 0")
    field: str = Field(description="the multipart field name, or images[i] for a JSON batch")
    filename: str | None = Field(None, description="the multipart file name, when the client sent one")


class BatchPrediction(Prediction):
    item: BatchItem


class BatchError(ErrorBody):
    item: BatchItem


class RefusalDetail(ErrorDetail):
    request_id: str = Field(description="this request's X-Request-ID (also in the header): quote it in a report")


class Refusal(BaseModel):
    """A whole request refused (4xx/5xx); per-item errors in a batch are ``ErrorBody``."""

    error: RefusalDetail


class ImageJSON(BaseModel):
    image: str = Field(description="base64 (standard or URL-safe) or a data: URI such as data:image/png;base64,...")


class ImageURL(BaseModel):
    url: str = Field(description="an https URL the server fetches (only when URL_ALLOWED_HOSTS allows its host)")


class BatchJSON(BaseModel):
    images: list[str | ImageURL] = Field(
        description='base64 strings, data: URIs or {"url": ...} objects, answered in this order'
    )


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
    min_confidence: float = Field(description='answers below this confidence are "unknown" (query min_confidence)')
    url_input: bool = Field(description='whether {"url": ...} is accepted (URL_ALLOWED_HOSTS is set)')
    formats: list[str] = Field(description="image formats the decoder accepts, detected from the bytes")
    load_seconds: float
    warmup_seconds: float
    # Scaling with the cores (issue 15): the layout core.sizing chose (intra_op_threads: per instance).
    cpus: int | None = Field(None, description="CPUs the service sized itself for (the cgroup quota, else affinity)")
    instance_threads: list[int] = Field(
        default_factory=list, description="onnxruntime threads of each inference instance (one batch in flight each)"
    )
    latency_session_threads: int = Field(0, description="threads of the session for lone requests; 0 = none")
    decode_threads: int | None = Field(None, description="threads that decode and preprocess")


class CalibrationInfo(BaseModel):
    calibrated: bool = Field(description="false for models exported without a fitted temperature")
    temperature: float = Field(description="probabilities are softmax(logits / temperature)")
    figures: dict[str, Any] = Field(description="how it was fitted: images, ECE and NLL before and after")


class ModelInfo(BaseModel):
    name: str | None
    version: str | None
    arch: str | None
    created: str | None
    precision: str | None = Field(None, description="fp32, int8 or fp16, from the model's metadata")
    opset: int | None = Field(None, description="ONNX opset recorded by export")
    file: str = Field("", description="the served file's name (MODEL_PATH without its folder)")
    sha256: str = Field("", description="sha256 of the served file")
    labels: list[str]
    input: InputInfo
    preprocess: PreprocessInfo
    training: dict[str, Any]
    parity: dict[str, Any]
    calibration: CalibrationInfo
    serving: ServingInfo


class Health(BaseModel):
    status: str = Field(description="always ok: the process answers")


class Readiness(BaseModel):
    status: str = Field(description="ready once the model is loaded and warmed up")
    model: str | None
    load_seconds: float
    warmup_seconds: float


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {
        "model": Refusal,
        "description": "undecodable or truncated image, bad base64, malformed body, a URL that could not be fetched",
    },
    401: {"model": Refusal, "description": "API_KEY is set and the request lacks X-API-Key / Bearer token"},
    403: {"model": Refusal, "description": "a {url} the server may not fetch (host, scheme, address or redirect)"},
    413: {"model": Refusal, "description": "body over MAX_UPLOAD_BYTES, or image over MAX_PIXELS"},
    415: {"model": Refusal, "description": "not an image (SVG, PDF, HTML, random bytes...)"},
    422: {"model": Refusal, "description": "bad parameters (top_k, JSON shape, too many images)"},
    503: {"model": Refusal, "description": "the model is still loading or warming up"},
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
                "application/json": {"schema": _image_json_schema()},
            },
        }
    }


def _image_json_schema() -> dict[str, Any]:
    """ImageJSON or ImageURL: an object with one of ``image`` and ``url``."""
    schema = ImageJSON.model_json_schema()
    schema["properties"]["url"] = ImageURL.model_json_schema()["properties"]["url"]
    schema.pop("required", None)
    schema["description"] = 'send "image" (base64) or "url" (fetched by the server when URL_ALLOWED_HOSTS allows it)'
    return schema


def _batch_json_schema() -> dict[str, Any]:
    """BatchJSON's schema with ImageURL inlined (a ``$defs`` reference would dangle inside OpenAPI)."""
    item = {"oneOf": [{"type": "string"}, ImageURL.model_json_schema()]}
    return {"type": "object", "required": ["images"], "properties": {"images": {"type": "array", "items": item}}}


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
                "application/json": {"schema": _batch_json_schema()},
            },
        }
    }
