"""A served model: the onnxruntime session and the contract read from the file itself."""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from core.contract import METADATA_KEY, ModelContract, parse_contract
from core.errors import ContractError, ModelFileError
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
    check_output(contract, {o.name: list(o.shape) for o in session.get_outputs()})
    return contract


def check_output(contract: ModelContract, outputs: dict[str, list[Any]]) -> None:
    """The metadata's output exists, and gives one score per label when the graph states its width."""
    name = contract.output.name
    if name not in outputs:
        raise ContractError(f"metadata names output {name!r}, the graph has {sorted(outputs)}")
    width = outputs[name][-1] if outputs[name] else None
    if isinstance(width, int) and width != len(contract.labels):
        raise ContractError(label_mismatch(len(contract.labels), width))


def label_mismatch(labels: int, scores: int) -> str:
    return (
        f"the metadata lists {labels} labels but the model outputs {scores} scores; "
        "export the checkpoint again so labels and weights come from the same run"
    )


def _check_scores(model: LoadedModel) -> None:
    """One score per label, checked by running the model once when the graph leaves its width symbolic."""
    (output,) = [o for o in model.session.get_outputs() if o.name == model.contract.output.name]
    if output.shape and isinstance(output.shape[-1], int):
        return  # already compared with the labels by read_contract
    width = model.logits(np.zeros((1, *model.input_shape), dtype=np.float32)).shape[-1]
    if width != len(model.contract.labels):
        raise ContractError(f"{model.path}: {label_mismatch(len(model.contract.labels), width)}")


def file_sha256(path: Path) -> str:
    """The identity of the served file: two exports of one run (FP32, INT8) differ here."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


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
    sha256: str = ""

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.contract.input.shape

    @property
    def precision(self) -> str | None:
        """``fp32``, ``int8`` or ``fp16`` as export recorded it; None for a file export did not write."""
        value = self.contract.model.get("precision")
        return str(value) if value is not None else None

    @property
    def opset(self) -> int | None:
        try:
            return int(self.contract.model["opset"])
        except (KeyError, TypeError, ValueError):
            return None

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


def _sniff(path: Path) -> str | None:
    """What a file that is not ONNX probably is, from its first bytes."""
    with open(path, "rb") as fh:
        head = fh.read(512)
    if not head:
        return "an empty file"
    if head.startswith(b"PK\x03\x04") or head[:1] == b"\x80":
        return "a PyTorch checkpoint or another archive/pickle; export it with `python -m export`"
    if all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        return "a text file"
    return None


def _open(path: Path, threads: int, providers: list[str] | None, spinning: bool) -> ort.InferenceSession:
    """The session, or one line saying why this file is not a model (a .pt, a text file, a cut download)."""
    if not path.exists():
        raise ModelFileError(f"{path} does not exist; run `make demo` or `python -m export` first")
    if path.is_dir():
        found = ", ".join(sorted(p.name for p in path.glob("*.onnx"))) or "no .onnx file in it"
        raise ModelFileError(f"{path} is a folder ({found}); point at the .onnx file itself")
    try:
        return open_session(path, threads, providers, spinning)
    except Exception as exc:  # noqa: BLE001 - onnxruntime's pybind errors share no useful base class
        reason = re.sub(r"^\[ONNXRuntimeError\] : \d+ : ", "", " ".join(str(exc).split())) or repr(exc)
        raise ModelFileError(
            f"{path} is not an ONNX model onnxruntime can load ({_sniff(path) or reason}); "
            "serve a model.onnx written by `python -m export`"
        ) from exc


def load_model(
    path: Path, threads: int, providers: list[str] | None = None, spinning: bool = False, sha256: str | None = None
) -> LoadedModel:
    """Open the ONNX file with explicit thread counts (no oversubscription) and read its contract.

    Every way the file can be unusable raises ``ModelFileError`` or ``ContractError``
    with a one-line message, so a service refuses to start instead of answering 500s.
    ``sha256``: the file's digest when another session of it already computed it (not read again).
    """
    path = Path(path)
    start = time.perf_counter()
    session = _open(path, threads, providers, spinning)
    try:
        contract = read_contract(session)
    except ContractError as exc:
        raise ContractError(f"{path}: {exc.message}") from exc
    model = LoadedModel(session=session, contract=contract, path=path, sha256=sha256 or file_sha256(path))
    _check_scores(model)
    model.load_seconds = time.perf_counter() - start
    return model
