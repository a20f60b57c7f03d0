"""The onnxruntime session and the model's contract, loaded once per process."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from service.contract import METADATA_KEY, ContractError, ModelContract, parse_contract


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
        spec = self.contract.input
        return spec.channels, spec.height, spec.width

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """(N, C, H, W) float32 -> (N, classes) float32 logits."""
        feeds = {self.contract.input.name: np.ascontiguousarray(batch, dtype=np.float32)}
        (out,) = self.session.run([self.contract.output.name], feeds)
        return out

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        out = self.logits(batch)
        return softmax(out) if self.contract.output.kind == "logits" else out

    def warm_up(self, rounds: int = 2) -> None:
        """Run dummy batches so the first real request does not pay for allocation."""
        start = time.perf_counter()
        dummy = np.zeros((1, *self.input_shape), dtype=np.float32)
        for _ in range(rounds):
            self.logits(dummy)
        self.warmup_seconds = time.perf_counter() - start


def session_options(threads: int, spinning: bool = False) -> ort.SessionOptions:
    """Explicit thread counts (no oversubscription); export and the benchmarks open sessions the same way."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    # Spinning workers wait hot between runs; on a 2-core box that CPU is what decoding needs.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return opts


def load_model(path: Path, threads: int, providers: list[str] | None = None, spinning: bool = False) -> LoadedModel:
    """Open the ONNX file with explicit thread counts (no oversubscription) and read its contract."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"MODEL_PATH={path} does not exist; run `make demo` or `python -m export` first")
    start = time.perf_counter()
    opts = session_options(threads, spinning)
    available = set(ort.get_available_providers())
    chosen = [p for p in (providers or ["CPUExecutionProvider"]) if p in available] or ["CPUExecutionProvider"]
    session = ort.InferenceSession(str(path), sess_options=opts, providers=chosen)
    model = LoadedModel(session=session, contract=read_contract(session), path=Path(path))
    model.load_seconds = time.perf_counter() - start
    return model
