"""Opening the served model, and the one line that says what is being served.

``python -m service`` opens the model before uvicorn starts, so an unusable
file ends the process with one line instead of a traceback; the lifespan opens
it the same way when the app is started by another ASGI server. Besides what
``core.model`` checks (the file, the metadata, the graph's names and width),
the file must match its sha256 and the model must answer the batch the
micro-batcher will send with one finite score per label: a model that starts
cannot answer 500.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from core.checksum import verify
from core.errors import ContractError
from core.model import LoadedModel, load_model
from core.sizing import ServingPlan
from service.settings import Settings

log = logging.getLogger("service")


def open_model(settings: Settings, threads: int | None = None) -> LoadedModel:
    """Load, check and warm up ``MODEL_PATH`` with ``threads`` intra-op threads (default: the
    settings'); raises ``ModelFileError`` or ``ContractError`` saying why it cannot serve."""
    providers = settings.providers.split(",")
    model = load_model(settings.model_path, threads or settings.threads, providers, settings.ort_spinning)
    check_file(model.path, settings.model_sha256, model.sha256)
    check_outputs(model, min(2, settings.max_batch_size))
    model.warm_up(settings.warmup_rounds)
    return model


def check_file(path: Path, expected: str | None, digest: str | None = None) -> None:
    """Refuse a model file whose sha256 differs from MODEL_SHA256 or from the sidecar export wrote."""
    if verify(path, expected, digest) is None:
        log.info("no sha256 for %s (no MODEL_SHA256, no %s.sha256): not checked", path, path.name)


def check_outputs(model: LoadedModel, batch: int) -> None:
    """Run a batch of ``batch`` blank images: the shape, and finite scores, one per label (probabilities sum to 1)."""
    n = len(model.contract.labels)
    x = np.zeros((batch, *model.input_shape), dtype=np.float32)
    try:
        out = np.asarray(model.probabilities(x))
    except Exception as exc:  # noqa: BLE001 - any failure here is the model's, reported in one line
        raise ContractError(
            f"the model fails on a batch of {batch} (MAX_BATCH_SIZE; is its batch dimension fixed?): "
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        ) from exc
    if out.shape != (batch, n):
        raise ContractError(f"the model answers shape {list(out.shape)} for {batch} images; expected [{batch}, {n}]")
    if not np.isfinite(out).all():
        raise ContractError("the model's output has NaN or infinite values on a blank image")
    if model.contract.output.kind == "probabilities" and not (
        (out >= 0).all() and np.allclose(out.sum(axis=1), 1.0, atol=1e-3)
    ):
        raise ContractError('output.kind is "probabilities" but the rows are not probabilities (>= 0, sum 1)')


def describe(model: LoadedModel, settings: Settings, plan: ServingPlan | None = None) -> str:
    """File, sha256, labels, precision, opset and the layout: enough to tell two files of one run apart."""
    layout = plan.describe() if plan else f"{settings.threads} onnxruntime threads, {settings.decoders} decode threads"
    return (
        f"serving {model.path} (sha256 {model.sha256}): {len(model.contract.labels)} labels, "
        f"precision {model.precision or 'unknown'}, opset {model.opset or 'unknown'}; {layout}; "
        f"load {model.load_seconds:.2f}s, warm-up {model.warmup_seconds:.2f}s"
    )


def startup_fields(model: LoadedModel, settings: Settings, plan: ServingPlan | None = None) -> dict[str, Any]:
    """The same facts as structured log fields (keys of the JSON line)."""
    return {
        "model_file": str(model.path),
        "model_sha256": model.sha256,
        "labels": len(model.contract.labels),
        "precision": model.precision,
        "opset": model.opset,
        "instances": plan.instances if plan else 1,
        "intra_op_threads": plan.inference_threads if plan else settings.threads,
        "decode_threads": plan.decoders if plan else settings.decoders,
    }
