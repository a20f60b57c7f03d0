"""The artifact contract: what a model expects and how its input is made, as typed values.

Training stores the input and preprocessing specs in the checkpoint, export
writes the whole contract as JSON into ``model.onnx`` (metadata key
``image_classifier``), and the service reads it back; none of them invents a
label, a size, a mean or a std. Every spec converts to and from plain JSON
values through its own ``to_dict`` / ``from_dict`` pair, and nowhere else.
Keys may be added to the JSON; the ones parsed here keep their meaning.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal, cast

from core.errors import ContractError

METADATA_KEY = "image_classifier"
SCHEMA_VERSION = 1
INPUT_NAME, OUTPUT_NAME = "input", "logits"  # the graph's tensor names, chosen at export
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

Color = Literal["RGB", "L"]


def _plain(value: Any) -> Any:
    """Tuples become lists so the JSON written equals the JSON read back."""
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _to_dict(spec: Any) -> dict[str, Any]:
    return {f.name: _plain(getattr(spec, f.name)) for f in fields(spec)}


@dataclass(frozen=True)
class InputSpec:
    name: str
    color: Color
    height: int
    width: int
    layout: str = "NCHW"
    dtype: str = "float32"

    @property
    def channels(self) -> int:
        return 3 if self.color == "RGB" else 1

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return self.channels, self.height, self.width

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> InputSpec:
        return cls(
            name=str(d.get("name", INPUT_NAME)),
            color=cast(Color, d["color"]),
            height=int(d["height"]),
            width=int(d["width"]),
            layout=str(d.get("layout", "NCHW")),
            dtype=str(d.get("dtype", "float32")),
        )


@dataclass(frozen=True)
class PreprocessSpec:
    """torchvision's eval transform: Resize(shorter) -> CenterCrop -> scale -> Normalize."""

    resize_shorter: int
    crop: tuple[int, int]  # (h, w)
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str = "bilinear"
    scale: float = 1.0 / 255.0

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PreprocessSpec:
        return cls(
            resize_shorter=int(d["resize_shorter"]),
            crop=(int(d["crop"][0]), int(d["crop"][1])),
            mean=tuple(float(x) for x in d["mean"]),
            std=tuple(float(x) for x in d["std"]),
            interpolation=str(d.get("interpolation", "bilinear")),
            scale=float(d.get("scale", 1.0 / 255.0)),
        )


@dataclass(frozen=True)
class OutputSpec:
    name: str
    kind: str = "logits"

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OutputSpec:
        return cls(name=str(d["name"]), kind=str(d.get("kind", "logits")))


@dataclass(frozen=True)
class CalibrationSpec:
    """Temperature scaling fitted at export: the served probabilities are ``softmax(logits / temperature)``.

    The figures say how far it was proven (expected calibration error before and
    after, on which images); a model exported before calibration existed has no
    such section and serves with temperature 1.
    """

    temperature: float = 1.0
    method: str = "temperature"
    fitted_on: str = ""  # e.g. "validation split (2618 images)"
    n: int = 0
    bins: int = 15
    ece_before: float | None = None
    ece_after: float | None = None
    nll_before: float | None = None
    nll_after: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CalibrationSpec:
        def number(key: str) -> float | None:
            return None if d.get(key) is None else float(d[key])

        return cls(
            temperature=float(d.get("temperature", 1.0)),
            method=str(d.get("method", "temperature")),
            fitted_on=str(d.get("fitted_on", "")),
            n=int(d.get("n", 0)),
            bins=int(d.get("bins", 15)),
            ece_before=number("ece_before"),
            ece_after=number("ece_after"),
            nll_before=number("nll_before"),
            nll_after=number("nll_after"),
        )


_SECTIONS = ("model", "training", "parity")  # free-form dicts of facts about the model
_KNOWN = {"labels", "input", "preprocess", "output", "calibration", "schema_version", *_SECTIONS}


@dataclass(frozen=True)
class ModelContract:
    labels: tuple[str, ...]
    input: InputSpec
    preprocess: PreprocessSpec
    output: OutputSpec
    model: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    parity: dict[str, Any] = field(default_factory=dict)
    calibration: CalibrationSpec | None = None  # absent in models exported before calibration: temperature 1
    extra: dict[str, Any] = field(default_factory=dict)  # unknown top-level keys, kept as they are

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "labels": list(self.labels),
            "input": self.input.to_dict(),
            "preprocess": self.preprocess.to_dict(),
            "output": self.output.to_dict(),
            **{s: _plain(getattr(self, s)) for s in _SECTIONS},
            "schema_version": SCHEMA_VERSION,
        }
        if self.calibration is not None:
            doc["calibration"] = self.calibration.to_dict()
        return {**self.extra, **doc}

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> ModelContract:
        return cls(
            labels=tuple(str(x) for x in doc["labels"]),
            input=InputSpec.from_dict(doc["input"]),
            preprocess=PreprocessSpec.from_dict(doc["preprocess"]),
            output=OutputSpec.from_dict(doc["output"]),
            **{s: dict(doc.get(s) or {}) for s in _SECTIONS},
            calibration=CalibrationSpec.from_dict(doc["calibration"]) if doc.get("calibration") else None,
            extra={k: v for k, v in doc.items() if k not in _KNOWN},
        )

    @property
    def temperature(self) -> float:
        """What logits are divided by before the softmax (1 when the model was never calibrated)."""
        return self.calibration.temperature if self.calibration is not None else 1.0

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def with_updates(self, **sections: Any) -> ModelContract:
        """A copy with whole sections (``parity``, ``training``, ``extra``...) replaced."""
        return replace(self, **sections)


def parse_contract(text: str) -> ModelContract:
    """Parse and validate the contract JSON; raise ``ContractError`` saying what is wrong."""
    try:
        doc = json.loads(text)
        if not isinstance(doc, dict) or not isinstance(doc.get("labels"), list):
            raise TypeError("expected a JSON object whose labels is a list of names")
        contract = ModelContract.from_dict(doc)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, RecursionError) as exc:
        raise ContractError(f"malformed {METADATA_KEY} metadata: {exc!r}") from exc
    validate(contract)
    return contract


OUTPUT_KINDS = ("logits", "probabilities")  # what ``LoadedModel.probabilities`` knows how to read
MAX_SIDE = 16384  # no image model takes more; a bigger number is a typo that would allocate gigabytes


def validate(c: ModelContract) -> None:
    """Refuse a contract the preprocessing rule cannot follow or the service could not answer with."""
    if not c.labels:
        raise ContractError("labels is empty")
    _check_labels(c.labels)
    if c.input.color not in ("RGB", "L"):
        raise ContractError(f"input.color must be RGB or L, got {c.input.color!r}")
    if c.input.layout != "NCHW" or c.input.dtype != "float32":
        raise ContractError("only NCHW float32 inputs are supported")
    _check_side("input.height", c.input.height)
    _check_side("input.width", c.input.width)
    if len(c.preprocess.mean) != c.input.channels or len(c.preprocess.std) != c.input.channels:
        raise ContractError("preprocess mean/std must have one value per input channel")
    if not all(math.isfinite(v) for v in (*c.preprocess.mean, *c.preprocess.std, c.preprocess.scale)):
        raise ContractError("preprocess mean, std and scale must be finite numbers")
    if any(s <= 0 for s in c.preprocess.std):
        raise ContractError("preprocess std must be positive")
    if c.preprocess.scale <= 0:
        raise ContractError(f"preprocess.scale must be positive, got {c.preprocess.scale}")
    if c.preprocess.crop != (c.input.height, c.input.width):
        raise ContractError("preprocess.crop must equal (input.height, input.width)")
    if not (math.isfinite(c.temperature) and c.temperature > 0):
        raise ContractError(f"calibration.temperature must be a positive number, got {c.temperature!r}")
    if c.calibration is not None and c.output.kind != "logits":
        raise ContractError("calibration needs an output of kind logits")
    _check_resize(c.preprocess)
    if c.preprocess.interpolation != "bilinear":
        raise ContractError(f"unsupported interpolation {c.preprocess.interpolation!r}")
    if not c.output.name:
        raise ContractError("output.name is empty")
    if c.output.kind not in OUTPUT_KINDS:
        raise ContractError(f"output.kind must be one of {', '.join(OUTPUT_KINDS)}, got {c.output.kind!r}")


def _check_labels(labels: tuple[str, ...]) -> None:
    blank = [i for i, label in enumerate(labels) if not label.strip()]
    if blank:
        raise ContractError(f"labels must be non-empty names; label {blank[0]} is blank")
    repeated = sorted(label for label, n in Counter(labels).items() if n > 1)
    if repeated:
        raise ContractError(f"labels must be unique; {repeated} appear more than once")


def _check_side(name: str, value: int) -> None:
    if not 0 < value <= MAX_SIDE:
        raise ContractError(f"{name} must be between 1 and {MAX_SIDE}, got {value}")


def _check_resize(p: PreprocessSpec) -> None:
    """Resize(shorter) must leave room for the crop, or every image would be padded with black."""
    _check_side("preprocess.resize_shorter", p.resize_shorter)
    if p.resize_shorter < max(p.crop):
        raise ContractError(
            f"preprocess.resize_shorter ({p.resize_shorter}) is smaller than the crop {list(p.crop)}: "
            "every image would be padded"
        )
