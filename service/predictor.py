"""Bytes in, JSON-ready prediction out: decode -> preprocess -> infer -> top-k.

Decoding and preprocessing run on a thread pool (Pillow releases the GIL), the
inference on the micro-batcher's thread: the event loop only routes bytes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from core.errors import ClassifierError, ImageRejected, UndecodableImage
from core.imaging import DecodeOptions, load_image, preprocess
from core.model import LoadedModel
from service.batcher import MicroBatcher
from service.errors import error_body
from service.metrics import Metrics
from service.schemas import ErrorBody, ModelRef, Prediction, ScoredLabel

log = logging.getLogger("service")


@dataclass
class Decoded:
    """One image turned into the model's input, with what it cost."""

    tensor: np.ndarray  # (C, H, W) float32
    timing_ms: dict[str, float] = field(default_factory=dict)


def prepare(model: LoadedModel, data: bytes, options: DecodeOptions) -> Decoded:
    """Decode and preprocess by the model's own contract (blocking; run off the event loop)."""
    t0 = time.perf_counter()
    try:
        img = load_image(data, model.contract.input.color, options)
        t1 = time.perf_counter()
        tensor = preprocess(img, model.contract.preprocess)
    except ImageRejected:
        raise
    except Exception as exc:  # noqa: BLE001 - these bytes broke a decoder: the client's input, not a 500
        log.warning("decoder failed on client input", exc_info=exc)
        raise UndecodableImage(f"the image could not be decoded: {type(exc).__name__}: {exc}") from exc
    t2 = time.perf_counter()
    return Decoded(tensor, {"decode": (t1 - t0) * 1e3, "preprocess": (t2 - t1) * 1e3})


def answer(model: LoadedModel, probs: np.ndarray, k: int, timing_ms: dict[str, float]) -> Prediction:
    """One row of probabilities -> the public answer."""
    labels = model.contract.labels
    order = np.argsort(-probs, kind="stable")[: min(k, len(labels))]
    ranked = [ScoredLabel(label=labels[i], score=round(float(probs[i]), 6)) for i in order]
    meta = model.contract.model
    return Prediction(
        label=ranked[0].label,
        confidence=ranked[0].score,
        top_k=ranked,
        model=ModelRef(name=meta.get("name"), version=meta.get("version")),
        timing_ms={name: round(ms, 3) for name, ms in timing_ms.items()},
    )


class Predictor:
    """The serving path: a decode pool, the micro-batcher, and the metrics they feed."""

    def __init__(
        self, model: LoadedModel, options: DecodeOptions, decoders: int, batcher: MicroBatcher, metrics: Metrics
    ) -> None:
        self.model, self.options, self.batcher, self.metrics = model, options, batcher, metrics
        self._pool = ThreadPoolExecutor(max_workers=decoders, thread_name_prefix="decode")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def predict(self, data: bytes, k: int) -> Prediction:
        """One image; raises ``ImageRejected`` for bad input (mapped to 4xx by the app)."""
        start = time.perf_counter()
        loop = asyncio.get_running_loop()
        try:
            with self.batcher.expect():
                prepared = await loop.run_in_executor(self._pool, prepare, self.model, data, self.options)
        except ImageRejected as exc:
            self.metrics.images.labels(exc.code).inc()
            raise
        t0 = time.perf_counter()
        inferred = await self.batcher.submit(prepared.tensor)  # the batcher runs model.probabilities
        t1 = time.perf_counter()
        timing = {
            **prepared.timing_ms,
            "queue": max(0.0, t1 - t0 - inferred.seconds) * 1e3,
            "inference": inferred.seconds * 1e3,
            "total": (t1 - start) * 1e3,
        }
        self.metrics.observe_stages({k_: timing[k_] for k_ in ("decode", "preprocess", "queue", "inference")})
        self.metrics.images.labels("ok").inc()
        return answer(self.model, inferred.row, k, timing)

    async def predict_many(self, items: list[bytes | ClassifierError], k: int) -> list[Prediction | ErrorBody]:
        """Several images concurrently, answers in input order; a bad item answers with its error."""

        async def one(item: bytes | ClassifierError) -> Prediction | ErrorBody:
            if isinstance(item, ClassifierError):
                return error_body(item)
            try:
                return await self.predict(item, k)
            except ImageRejected as exc:
                return error_body(exc)

        # Each item announces itself to the batcher while it decodes, so they share inferences.
        return list(await asyncio.gather(*(one(item) for item in items)))
