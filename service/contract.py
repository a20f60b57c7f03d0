"""The artifact contract: the JSON that export writes into ``model.onnx``.

Export builds it, the service parses it; neither side invents a label, a size,
a mean or a std. The key ``image_classifier`` in the ONNX ``metadata_props``
holds the JSON. Keys may be added; the ones parsed here keep their meaning.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

METADATA_KEY = "image_classifier"
SCHEMA_VERSION = 1

Color = Literal["RGB", "L"]


class ContractError(ValueError):
    """The model file does not carry a usable ``image_classifier`` entry."""


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


@dataclass(frozen=True)
class PreprocessSpec:
    """torchvision's eval transform: Resize(shorter) -> CenterCrop -> scale -> Normalize."""

    resize_shorter: int
    crop: tuple[int, int]  # (h, w)
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str = "bilinear"
    scale: float = 1.0 / 255.0


@dataclass(frozen=True)
class OutputSpec:
    name: str
    kind: str = "logits"


@dataclass(frozen=True)
class ModelContract:
    labels: tuple[str, ...]
    input: InputSpec
    preprocess: PreprocessSpec
    output: OutputSpec
    model: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    parity: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        doc = asdict(self)
        extra = doc.pop("extra")
        doc["schema_version"] = SCHEMA_VERSION
        doc.update(extra)
        return json.dumps(doc, sort_keys=True)

    def with_updates(self, **sections: dict[str, Any]) -> ModelContract:
        """Return a copy with whole sections (``parity``, ``training``...) replaced."""
        doc = {**self.__dict__, **sections}
        return ModelContract(**doc)


_KNOWN = {"labels", "input", "preprocess", "output", "model", "training", "parity", "schema_version"}


def parse_contract(text: str) -> ModelContract:
    """Parse and validate the contract JSON; raise ``ContractError`` saying what is wrong."""
    try:
        doc = json.loads(text)
        inp, pre, out = doc["input"], doc["preprocess"], doc["output"]
        contract = ModelContract(
            labels=tuple(str(x) for x in doc["labels"]),
            input=InputSpec(
                name=str(inp["name"]),
                color=inp["color"],
                height=int(inp["height"]),
                width=int(inp["width"]),
                layout=str(inp.get("layout", "NCHW")),
                dtype=str(inp.get("dtype", "float32")),
            ),
            preprocess=PreprocessSpec(
                resize_shorter=int(pre["resize_shorter"]),
                crop=(int(pre["crop"][0]), int(pre["crop"][1])),
                mean=tuple(float(x) for x in pre["mean"]),
                std=tuple(float(x) for x in pre["std"]),
                interpolation=str(pre.get("interpolation", "bilinear")),
                scale=float(pre.get("scale", 1.0 / 255.0)),
            ),
            output=OutputSpec(name=str(out["name"]), kind=str(out.get("kind", "logits"))),
            model=dict(doc.get("model", {})),
            training=dict(doc.get("training", {})),
            parity=dict(doc.get("parity", {})),
            extra={k: v for k, v in doc.items() if k not in _KNOWN},
        )
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ContractError(f"malformed {METADATA_KEY} metadata: {exc!r}") from exc
    _validate(contract)
    return contract


def _validate(c: ModelContract) -> None:
    if not c.labels:
        raise ContractError("labels is empty")
    if c.input.color not in ("RGB", "L"):
        raise ContractError(f"input.color must be RGB or L, got {c.input.color!r}")
    if c.input.layout != "NCHW" or c.input.dtype != "float32":
        raise ContractError("only NCHW float32 inputs are supported")
    if len(c.preprocess.mean) != c.input.channels or len(c.preprocess.std) != c.input.channels:
        raise ContractError("preprocess mean/std must have one value per input channel")
    if any(s <= 0 for s in c.preprocess.std):
        raise ContractError("preprocess std must be positive")
    if c.preprocess.crop != (c.input.height, c.input.width):
        raise ContractError("preprocess.crop must equal (input.height, input.width)")
    if c.preprocess.interpolation != "bilinear":
        raise ContractError(f"unsupported interpolation {c.preprocess.interpolation!r}")
