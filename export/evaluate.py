"""onnxruntime measurements shared by export and bench: logits, accuracy, agreement, images/s."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort


@dataclass
class Run:
    logits: np.ndarray  # (N, classes)
    seconds: float  # time inside session.run only (no preprocessing)

    @property
    def images_per_s(self) -> float:
        return len(self.logits) / max(self.seconds, 1e-9)


def run_batches(sess: ort.InferenceSession, x: np.ndarray, batch: int = 8) -> Run:
    """Logits for ``x`` (N, C, H, W) in batches of ``batch``, after one warm-up batch."""
    name = sess.get_inputs()[0].name
    sess.run(None, {name: np.ascontiguousarray(x[:batch], dtype=np.float32)})
    outs, spent = [], 0.0
    for i in range(0, len(x), batch):
        chunk = np.ascontiguousarray(x[i : i + batch], dtype=np.float32)
        t0 = time.perf_counter()
        (out,) = sess.run(None, {name: chunk})
        spent += time.perf_counter() - t0
        outs.append(out)
    return Run(np.concatenate(outs), spent)


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((logits.argmax(1) == labels).mean()) if len(labels) else float("nan")


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    return float((a.argmax(1) == b.argmax(1)).mean()) if len(a) else float("nan")


def throughput(
    sess: ort.InferenceSession,
    x: np.ndarray,
    batch: int,
    min_seconds: float = 1.0,
    min_iters: int = 3,
    max_iters: int = 200,
) -> float:
    """images/s at ``batch``: repeat the same batch until ``min_seconds`` and ``min_iters`` are both reached."""
    name = sess.get_inputs()[0].name
    chunk = np.ascontiguousarray(np.resize(x, (batch, *x.shape[1:])), dtype=np.float32)
    sess.run(None, {name: chunk})  # warm-up: allocation and kernel selection
    iters, start = 0, time.perf_counter()
    while iters < max_iters and (iters < min_iters or time.perf_counter() - start < min_seconds):
        sess.run(None, {name: chunk})
        iters += 1
    return iters * batch / (time.perf_counter() - start)
