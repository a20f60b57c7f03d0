"""Build the artifact contract (``core.contract``) from a training checkpoint."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import onnx

from core.contract import INPUT_NAME, METADATA_KEY, OUTPUT_NAME, ModelContract, OutputSpec, parse_contract
from train.checkpoint import input_spec, preprocess_spec


def contract_from_checkpoint(ckpt: dict[str, Any], name: str, version: str) -> ModelContract:
    return ModelContract(
        labels=tuple(ckpt["labels"]),
        input=replace(input_spec(ckpt), name=INPUT_NAME),
        preprocess=preprocess_spec(ckpt),
        output=OutputSpec(OUTPUT_NAME, "logits"),
        model={
            "name": name,
            "arch": ckpt["arch"],
            "version": version,
            "precision": "fp32",
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
        },
        training={
            "val_accuracy": ckpt.get("val_accuracy"),
            "best_val_accuracy": ckpt.get("best_val_accuracy"),
            "test_accuracy": ckpt.get("test_accuracy"),
            "split_sha256": ckpt.get("split_sha256"),
            "epoch": ckpt.get("epoch"),
        },
    )


def variant_contract(contract: ModelContract, precision: str, source: str, figures: dict[str, Any]) -> ModelContract:
    """The same contract for a derived model (int8, fp16): the service serves it unchanged.

    Only ``model.precision`` and a section of measured figures differ, so a
    reader can tell which file it loaded and how far it was proven.
    """
    model = {**contract.model, "precision": precision, "derived_from": source}
    return contract.with_updates(model=model, extra={**contract.extra, precision: figures})


def write_metadata(model: onnx.ModelProto, contract: ModelContract) -> None:
    """Store the contract JSON under ``image_classifier``; refuse one the service could not read."""
    text = contract.to_json()
    parse_contract(text)
    for prop in list(model.metadata_props):
        if prop.key == METADATA_KEY:
            model.metadata_props.remove(prop)
    model.metadata_props.add(key=METADATA_KEY, value=text)
