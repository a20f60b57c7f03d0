"""Bytes in, JSON-ready prediction out: decode -> preprocess -> infer -> top-k."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from service.imaging import DecodeOptions, load_image, preprocess
from service.model import LoadedModel


@dataclass
class Prepared:
    """One image turned into the model's input, with what it cost."""

    tensor: np.ndarray  # (C, H, W) float32
    timing_ms: dict[str, float] = field(default_factory=dict)


def prepare(model: LoadedModel, data: bytes, options: DecodeOptions) -> Prepared:
    """Decode and preprocess by the model's own contract (blocking; run off the event loop)."""
    t0 = time.perf_counter()
    img = load_image(data, model.contract.input.color, options)
    t1 = time.perf_counter()
    tensor = preprocess(img, model.contract.preprocess)
    t2 = time.perf_counter()
    return Prepared(tensor, {"decode": (t1 - t0) * 1e3, "preprocess": (t2 - t1) * 1e3})


def top_k(model: LoadedModel, probs: np.ndarray, k: int) -> dict:
    """One row of probabilities -> the public answer (floats as JSON numbers)."""
    labels = model.contract.labels
    k = min(k, len(labels))
    order = np.argsort(-probs, kind="stable")[:k]
    ranked = [{"label": labels[i], "score": round(float(probs[i]), 6)} for i in order]
    meta = model.contract.model
    return {
        "label": ranked[0]["label"],
        "confidence": ranked[0]["score"],
        "top_k": ranked,
        "model": {"name": meta.get("name"), "version": meta.get("version")},
    }


def predict_one(model: LoadedModel, data: bytes, k: int, options: DecodeOptions) -> dict:
    """The whole path for one image, synchronously (tests, CLI, batch fallback)."""
    prepared = prepare(model, data, options)
    t0 = time.perf_counter()
    probs = model.probabilities(prepared.tensor[None])[0]
    timing = {**prepared.timing_ms, "inference": (time.perf_counter() - t0) * 1e3}
    return {**top_k(model, probs, k), "timing_ms": {k_: round(v, 3) for k_, v in timing.items()}}
