"""Checks at start that make a served model unable to answer 500: the file's checksum, its outputs.

``core.contract.validate`` checks the metadata and ``core.model`` the graph's
names; these run the model once: the batch the micro-batcher will send must go
through, and what comes out must be one finite score per label.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from core.checksum import verify
from core.errors import ContractError
from core.model import LoadedModel

log = logging.getLogger("service")


def check_file(path: Path, expected: str | None) -> None:
    """Refuse a model file whose sha256 differs from MODEL_SHA256 or from the sidecar export wrote."""
    digest = verify(path, expected)
    if digest is None:
        log.info("no sha256 for %s (no MODEL_SHA256, no %s.sha256): not checked", path, path.name)
    else:
        log.info("model file sha256 %s verified", digest)


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
