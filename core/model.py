"""A served model: the onnxruntime session and the contract read from the file itself."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from core.contract import METADATA_KEY, ModelContract, parse_contract
from core.errors import ContractError
from core.runtime import open_session


def read_contract(session: ort.InferenceSession) -> ModelContract:
    """The ``image_classifier`` metadata of a loaded model, validated."""
    meta = session.get_modelmeta().custom_metadata_map
    if METADATA_KEY not in meta:
        raise ContractError(f"the model has no {METADATA_KEY!r} metadata; export it with `python -m export`")
    contract = parse_contract(meta[METADATA_KEY])
    names = [i.name for i in session.get_inputs()]
    if contract.input.name not in names:
        raise ContractError(f"metadata names input {contract.input.name!r}, the graph has {names}")
    return contract


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


@dataclass
class LoadedModel:
    session: ort.InferenceSession
    contract: ModelContract
    path: Path
    load_seconds: float = 0.0
    warmup_seconds: float = 0.0

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.contract.input.shape

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """(N, C, H, W) float32 -> (N, classes) float32 logits."""
        feeds = {self.contract.input.name: np.ascontiguousarray(batch, dtype=np.float32)}
        (out,) = self.session.run([self.contract.output.name], feeds)
        return out

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        """Calibrated probabilities: ``softmax(logits / T)`` with the temperature fitted at export (T = 1 if none)."""
        out = self.logits(batch)
        return softmax(out / np.float32(self.contract.temperature)) if self.contract.output.kind == "logits" else out

    def warm_up(self, rounds: int = 2) -> None:
        """Run dummy batches so the first real request does not pay for allocation."""
        start = time.perf_counter()
        dummy = np.zeros((1, *self.input_shape), dtype=np.float32)
        for _ in range(rounds):
            self.logits(dummy)
        self.warmup_seconds = time.perf_counter() - start


def load_model(path: Path, threads: int, providers: list[str] | None = None, spinning: bool = False) -> LoadedModel:
    """Open the ONNX file with explicit thread counts (no oversubscription) and read its contract."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"MODEL_PATH={path} does not exist; run `make demo` or `python -m export` first")
    start = time.perf_counter()
    session = open_session(Path(path), threads, providers, spinning)
    model = LoadedModel(session=session, contract=read_contract(session), path=Path(path))
    model.load_seconds = time.perf_counter() - start
    return model
