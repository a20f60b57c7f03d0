"""Opening the served model, and the one line that says what is being served.

``python -m service`` opens the model before uvicorn starts, so an unusable
file ends the process with one line instead of a traceback; the lifespan opens
it the same way when the app is started by another ASGI server.
"""

from __future__ import annotations

from typing import Any

from core.model import LoadedModel, load_model
from service.settings import Settings


def open_model(settings: Settings) -> LoadedModel:
    """Load and warm up ``MODEL_PATH``; raises ``ModelFileError`` or ``ContractError`` saying why it cannot serve."""
    model = load_model(settings.model_path, settings.threads, settings.providers.split(","), settings.ort_spinning)
    model.warm_up(settings.warmup_rounds)
    return model


def describe(model: LoadedModel, settings: Settings) -> str:
    """File, sha256, labels, precision, opset and threads: enough to tell two files of one run apart."""
    return (
        f"serving {model.path} (sha256 {model.sha256}): {len(model.contract.labels)} labels, "
        f"precision {model.precision or 'unknown'}, opset {model.opset or 'unknown'}, "
        f"{settings.threads} onnxruntime threads, {settings.decoders} decode threads; "
        f"load {model.load_seconds:.2f}s, warm-up {model.warmup_seconds:.2f}s"
    )


def startup_fields(model: LoadedModel, settings: Settings) -> dict[str, Any]:
    """The same facts as structured log fields (keys of the JSON line)."""
    return {
        "model_file": str(model.path),
        "model_sha256": model.sha256,
        "labels": len(model.contract.labels),
        "precision": model.precision,
        "opset": model.opset,
        "intra_op_threads": settings.threads,
        "decode_threads": settings.decoders,
    }
