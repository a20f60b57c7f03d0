"""Bytes in, JSON-ready prediction out: decode -> preprocess -> infer -> top-k.

Decoding and preprocessing run on the decode lanes (service/lanes.py; Pillow releases the GIL), the
inference on the micro-batcher's thread: the event loop only routes bytes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from core.errors import ClassifierError, ImageRejected
from core.imaging import DecodeOptions
from core.model import LoadedModel
from service import request_id, tracing
from service.admission import current_deadline
from service.batcher import DeadlineExceeded, Inferred, MicroBatcher
from service.errors import Overloaded, error_body
from service.metrics import Metrics
from service.schemas import ErrorBody, ModelRef, Prediction, ScoredLabel

if TYPE_CHECKING:
    from service.lanes import DecodeLanes

log = logging.getLogger("service")


@dataclass
class Decoded:
    """One image turned into the model's input, with what it cost."""

    tensor: np.ndarray  # (C, H, W) float32
    timing_ms: dict[str, float] = field(default_factory=dict)
    image: tuple[str | None, int, int] = (None, 0, 0)  # format, width, height as decoded (for the logs)


def answer(
    model: LoadedModel, probs: np.ndarray, k: int, timing_ms: dict[str, float], min_confidence: float = 0.0
) -> Prediction:
    """One row of probabilities -> the public answer; below ``min_confidence`` the label is withheld."""
    labels = model.contract.labels
    order = np.argsort(-probs, kind="stable")[: min(k, len(labels))]
    ranked = [ScoredLabel(label=labels[i], score=round(float(probs[i]), 6)) for i in order]
    unknown = ranked[0].score < min_confidence  # the reported (rounded) score, so the answer is self-consistent
    meta = model.contract.model
    return Prediction(
        label=None if unknown else ranked[0].label,
        confidence=ranked[0].score,
        unknown=unknown,
        calibrated=model.contract.calibration is not None,
        top_k=ranked,
        model=ModelRef(
            name=meta.get("name"), version=meta.get("version"), precision=model.precision, sha256=model.sha256
        ),
        timing_ms={name: round(ms, 3) for name, ms in timing_ms.items()},
    )


def trace_queue_and_inference(submitted_ns: int, answered_ns: int, seconds: float, batch_size: int) -> None:
    """The wait for a micro-batch and the onnxruntime call this request shared, as two spans."""
    if tracing.active():
        started_ns = max(submitted_ns, answered_ns - int(seconds * 1e9))
        tracing.record("queue", submitted_ns, started_ns)
        tracing.record("inference", started_ns, answered_ns, batch_size=batch_size)


class Predictor:
    """The serving path: the decode lanes, the micro-batcher, and the metrics they feed."""

    def __init__(
        self, model: LoadedModel, options: DecodeOptions, lanes: DecodeLanes, batcher: MicroBatcher, metrics: Metrics
    ) -> None:
        self.model, self.options, self.batcher, self.metrics = model, options, batcher, metrics
        self.lanes = lanes

    def close(self) -> None:
        self.lanes.close()

    async def predict(self, data: bytes, k: int, min_confidence: float = 0.0) -> Prediction:
        """One image; raises ``ImageRejected`` for bad input (mapped to 4xx by the app)."""
        row, timing = await self.infer_image(data)
        return answer(self.model, row, k, timing, min_confidence)

    async def infer_image(self, data: bytes) -> tuple[np.ndarray, dict[str, float]]:
        """One encoded image -> its row of (calibrated) probabilities and the stage timings."""
        start = time.perf_counter()
        try:
            with self.batcher.expect():
                prepared = await self.lanes.prepare(self.model, data, self.options)  # decoded in this request's context
        except ImageRejected as exc:
            self.metrics.images.labels(exc.code).inc()
            raise
        except (asyncio.CancelledError, Overloaded) as exc:  # the client left, or the deadline passed
            self.metrics.skipped.labels("client_gone" if isinstance(exc, asyncio.CancelledError) else "deadline").inc()
            raise
        request_id.note_image(*prepared.image)
        t0, t0_ns = time.perf_counter(), time.time_ns()
        inferred = await self._infer(prepared.tensor)  # the batcher runs model.probabilities
        t1 = time.perf_counter()
        trace_queue_and_inference(t0_ns, time.time_ns(), inferred.seconds, inferred.batch_size)
        timing = {
            **prepared.timing_ms,
            "queue": max(0.0, t1 - t0 - inferred.seconds) * 1e3,
            "inference": inferred.seconds * 1e3,
            "total": (t1 - start) * 1e3,
        }
        self.metrics.observe_stages({k_: timing[k_] for k_ in ("decode", "preprocess", "queue", "inference")})
        self.metrics.images.labels("ok").inc()
        meta = self.model.contract.model
        request_id.note(model_name=meta.get("name"), model_version=meta.get("version"))
        return inferred.row, timing

    async def _infer(self, tensor: np.ndarray) -> Inferred:
        """The micro-batcher, which drops the image if its request's deadline passes or its client leaves."""
        try:
            return await self.batcher.submit(tensor, current_deadline())
        except asyncio.CancelledError:
            self.metrics.skipped.labels("client_gone").inc()
            raise
        except DeadlineExceeded as exc:
            self.metrics.skipped.labels("deadline").inc()
            raise Overloaded("deadline", "the request's deadline passed while it waited for inference; retry") from exc

    async def infer_tensor(self, tensor: np.ndarray) -> np.ndarray:
        """One already preprocessed (C, H, W) float32 tensor -> its row of probabilities, via the micro-batcher."""
        return (await self._infer(tensor)).row

    async def predict_many(
        self, items: list[bytes | ClassifierError], k: int, min_confidence: float = 0.0
    ) -> list[Prediction | ErrorBody]:
        """Several images concurrently, answers in input order; a bad item answers with its error."""

        async def one(item: bytes | ClassifierError) -> Prediction | ErrorBody:
            if isinstance(item, ClassifierError):
                return error_body(item)
            try:
                return await self.predict(item, k, min_confidence)
            except ClassifierError as exc:  # a bad image, or one shed (memory, deadline): its own answer
                return error_body(exc)

        # Each item announces itself to the batcher while it decodes, so they share inferences.
        answers = list(await asyncio.gather(*(one(item) for item in items)))
        request_id.note(items=len(answers), item_errors=sum(isinstance(a, ErrorBody) for a in answers))
        return answers
