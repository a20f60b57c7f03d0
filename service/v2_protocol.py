"""Open Inference Protocol v2 (KServe, Triton, MLServer) over HTTP: tensors in and out of JSON and bytes.

A request is JSON, optionally followed by raw tensor bytes (the binary tensor
data extension): ``Inference-Header-Content-Length`` says where the JSON ends,
and each input with ``parameters.binary_data_size`` takes that many bytes, in
order. BYTES tensors are sent in binary as ``<uint32 little-endian length><bytes>``
per element, and in JSON as strings (base64 here, since images are binary).

What this server accepts (one input per request):
- ``image``: BYTES ``[N]`` (any shape of N elements), each an encoded image file;
- the model's input name (e.g. ``input``): FP32 ``[N, C, H, W]``, already preprocessed.
It answers ``probabilities``: FP32 ``[N, K]``, or with ``parameters.classification = k``
(Triton's classification extension) BYTES ``[N, k]`` of ``"score:index:label"``.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.contract import ModelContract
from service.errors import ApiError
from service.jsonbody import parse_json
from service.upload import decode_base64

IMAGE_INPUT = "image"
OUTPUT = "probabilities"
HEADER_LENGTH = "inference-header-content-length"
EXTENSIONS = ["binary_tensor_data", "classification"]


def bad_request(message: str) -> ApiError:
    return ApiError(400, "invalid_inference_request", message)


@dataclass
class InputTensor:
    name: str
    datatype: str
    shape: list[int]
    data: Any = None  # the JSON "data", when not sent as binary
    raw: bytes | None = None  # the binary tensor data, when sent that way

    @property
    def count(self) -> int:
        return math.prod(self.shape)


@dataclass
class RequestedOutput:
    name: str
    binary: bool
    classification: int = 0  # top-k strings instead of the tensor


@dataclass
class InferRequest:
    id: str | None
    inputs: list[InputTensor]
    outputs: list[RequestedOutput] = field(default_factory=list)


def _int(value: Any, where: str, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise bad_request(f"{where} must be an integer >= {low}, got {value!r}")
    return value


def _input(doc: Any, i: int) -> InputTensor:
    if not isinstance(doc, dict):
        raise bad_request(f"inputs[{i}] must be an object with name, datatype, shape and data")
    missing = [k for k in ("name", "datatype", "shape") if k not in doc]
    if missing:
        raise bad_request(f"inputs[{i}] lacks {', '.join(missing)}")
    shape = doc["shape"]
    if not isinstance(shape, list) or not shape:
        raise bad_request(f"inputs[{i}].shape must be a non-empty list of integers")
    dims = [_int(d, f"inputs[{i}].shape", 0) for d in shape]
    return InputTensor(str(doc["name"]), str(doc["datatype"]).upper(), dims, doc.get("data"))


def _output(doc: Any, binary_default: bool) -> RequestedOutput:
    if not isinstance(doc, dict) or "name" not in doc:
        raise bad_request("each entry of outputs must be an object with a name")
    params = doc.get("parameters") or {}
    if not isinstance(params, dict):
        raise bad_request("outputs[].parameters must be an object")
    binary = params.get("binary_data", binary_default)
    return RequestedOutput(str(doc["name"]), bool(binary), _int(params.get("classification", 0), "classification"))


def parse_request(body: bytes, header_length: str | None) -> InferRequest:
    """The request JSON and any binary tensors after it (blocking: run it off the event loop)."""
    if header_length is None:
        head, rest = body, b""
    else:
        if not header_length.strip().isdigit() or int(header_length) > len(body):
            raise bad_request(f"Inference-Header-Content-Length {header_length!r} does not fit the body")
        head, rest = body[: int(header_length)], body[int(header_length) :]
    try:  # depth and number length bounded: a hostile body is a 400, never a RecursionError's 500
        # tensors may be nested lists of numbers: only the body size bounds how many (MAX_UPLOAD_BYTES)
        doc = parse_json(head, max_containers=len(head) // 2 + 1, max_values=len(head) // 2 + 1)
    except ApiError as exc:
        raise bad_request(f"the inference request is not valid JSON: {exc.message}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("inputs"), list) or not doc["inputs"]:
        raise bad_request('the body must be {"inputs": [{"name", "datatype", "shape", "data"}], ...}')
    params = doc.get("parameters") or {}
    binary_default = bool(params.get("binary_data_output", False)) if isinstance(params, dict) else False
    inputs = [_input(d, i) for i, d in enumerate(doc["inputs"])]
    offset = 0
    for d, tensor in zip(doc["inputs"], inputs, strict=True):
        size = (d.get("parameters") or {}).get("binary_data_size")
        if size is not None:
            size = _int(size, f"{tensor.name}: binary_data_size")
            if offset + size > len(rest):
                raise bad_request(f"{tensor.name}: binary_data_size {size} runs past the end of the body")
            tensor.raw, offset = rest[offset : offset + size], offset + size
        elif tensor.data is None:
            raise bad_request(f"{tensor.name}: no data and no binary_data_size")
    if offset != len(rest):
        raise bad_request(f"{len(rest) - offset} bytes of binary data are not claimed by any input")
    outputs = [_output(o, binary_default) for o in doc.get("outputs") or []]
    rid = doc.get("id")
    return InferRequest(None if rid is None else str(rid), inputs, outputs or [RequestedOutput(OUTPUT, binary_default)])


def _flatten(data: Any) -> list[Any]:
    """The spec allows "data" flat or nested to the tensor's shape (row-major either way)."""
    if not isinstance(data, list):
        return [data]
    out: list[Any] = []
    for item in data:
        out.extend(_flatten(item) if isinstance(item, list) else [item])
    return out


def deserialize_bytes(raw: bytes, where: str) -> list[bytes]:
    """``<uint32 LE length><bytes>`` repeated -> the elements."""
    items: list[bytes] = []
    offset = 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise bad_request(f"{where}: a BYTES element length is cut off")
        (n,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + n > len(raw):
            raise bad_request(f"{where}: element {len(items)} claims {n} bytes, past the end of the data")
        items.append(raw[offset : offset + n])
        offset += n
    return items


def serialize_bytes(items: list[bytes]) -> bytes:
    return b"".join(struct.pack("<I", len(b)) + b for b in items)


def image_elements(t: InputTensor, max_items: int) -> list[bytes]:
    """A BYTES tensor of encoded images -> their bytes (binary as is, JSON strings as base64)."""
    if t.datatype != "BYTES":
        raise bad_request(f"input {t.name!r} must be BYTES (encoded image files), got {t.datatype}")
    _check_batch(t.count, t.name, max_items)  # before decoding anything
    if t.raw is not None:
        items = deserialize_bytes(t.raw, t.name)
    else:
        items = [decode_base64(v, f"{t.name}[{i}]") for i, v in enumerate(_flatten(t.data))]
    if len(items) != t.count:
        raise bad_request(f"input {t.name!r}: shape {t.shape} holds {t.count} elements, the data has {len(items)}")
    return items


def tensor_batch(t: InputTensor, contract: ModelContract, max_items: int) -> np.ndarray:
    """A FP32 tensor already preprocessed -> (N, C, H, W) float32, checked against the contract."""
    chw = list(contract.input.shape)
    if t.datatype != "FP32":
        raise bad_request(f"input {t.name!r} must be FP32, got {t.datatype}")
    if len(t.shape) != 4 or t.shape[1:] != chw:
        raise bad_request(f"input {t.name!r} must have shape [N, {', '.join(map(str, chw))}], got {t.shape}")
    _check_batch(t.shape[0], t.name, max_items)
    if t.raw is not None:
        if len(t.raw) != 4 * t.count:
            raise bad_request(
                f"input {t.name!r}: {len(t.raw)} bytes of binary data, shape {t.shape} needs {4 * t.count}"
            )
        array = np.frombuffer(t.raw, dtype="<f4")
    else:
        try:
            with np.errstate(over="ignore"):  # 1e39 becomes inf, refused below
                array = np.asarray(_flatten(t.data), dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise bad_request(f"input {t.name!r}: data must be numbers ({exc})") from exc
        if array.size != t.count:
            raise bad_request(f"input {t.name!r}: shape {t.shape} holds {t.count} values, the data has {array.size}")
    if not np.isfinite(array).all():
        raise bad_request(f"input {t.name!r} contains NaN or infinity")
    return array.astype(np.float32).reshape(t.shape)


def _check_batch(n: int, name: str, max_items: int) -> None:
    if not 1 <= n <= max_items:
        raise ApiError(
            422, "too_many_images", f"input {name!r}: batch of {n}; between 1 and {max_items} (MAX_BATCH_ITEMS)"
        )


def classification(probs: np.ndarray, k: int, labels: tuple[str, ...]) -> list[bytes]:
    """Triton's classification extension: per row the top ``k`` as ``b"score:index:label"``, row-major."""
    if not 1 <= k <= len(labels):
        raise bad_request(f"classification must be between 1 and {len(labels)} (the number of labels), got {k}")
    out = []
    for row in probs:
        for i in np.argsort(-row, kind="stable")[:k]:
            out.append(f"{row[i]:.6f}:{i}:{labels[i]}".encode())
    return out


def output_tensor(want: RequestedOutput, probs: np.ndarray, labels: tuple[str, ...]) -> tuple[dict, bytes | None]:
    """One requested output as its JSON entry, plus its bytes when sent in binary."""
    if want.name != OUTPUT:
        raise bad_request(f"unknown output {want.name!r}; this model has {OUTPUT!r}")
    n = len(probs)
    if want.classification:
        items = classification(probs, want.classification, labels)
        entry: dict[str, Any] = {"name": OUTPUT, "datatype": "BYTES", "shape": [n, want.classification]}
        raw = serialize_bytes(items)
        data: list[Any] = [b.decode() for b in items]
    else:
        entry = {"name": OUTPUT, "datatype": "FP32", "shape": [n, probs.shape[1]]}
        raw = np.ascontiguousarray(probs, dtype="<f4").tobytes()
        data = [float(x) for x in probs.reshape(-1)]
    if want.binary:
        entry["parameters"] = {"binary_data_size": len(raw)}
        return entry, raw
    entry["data"] = data
    return entry, None


def encode_response(head: dict[str, Any], outputs: list[tuple[dict, bytes | None]]) -> tuple[bytes, dict[str, str]]:
    """The response body and headers: JSON alone, or JSON then the binary outputs in order."""
    doc = {**head, "outputs": [entry for entry, _ in outputs]}
    text = json.dumps(doc, separators=(",", ":")).encode()
    blobs = [raw for _, raw in outputs if raw is not None]
    if not blobs:
        return text, {"Content-Type": "application/json"}
    headers = {"Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(len(text))}
    return text + b"".join(blobs), headers


def tensor_metadata(contract: ModelContract) -> tuple[list[dict], list[dict]]:
    """The model's inputs (send exactly one of them) and outputs, as the metadata endpoint lists them."""
    inputs = [
        {"name": IMAGE_INPUT, "datatype": "BYTES", "shape": [-1]},
        {"name": contract.input.name, "datatype": "FP32", "shape": [-1, *contract.input.shape]},
    ]
    outputs = [{"name": OUTPUT, "datatype": "FP32", "shape": [-1, len(contract.labels)]}]
    return inputs, outputs
