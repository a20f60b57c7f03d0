"""The contract is refused whole when any part of it could not be served: sizes, kinds, labels, resize."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from core.contract import ModelContract, parse_contract, validate
from core.errors import ContractError
from tests.service.modelgen import gray_contract, rgb_contract


def doc(**changes: Any) -> str:
    d = rgb_contract().to_dict()
    for path, value in changes.items():
        section, _, key = path.partition("__")
        if key:
            d[section][key] = value
        else:
            d[section] = value
    return json.dumps(d)


def test_the_test_models_contracts_pass() -> None:
    for contract in (rgb_contract(), gray_contract(), rgb_contract(224)):
        validate(contract)
        assert parse_contract(contract.to_json()) == contract


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"preprocess__resize_shorter": 0}, "resize_shorter must be between 1"),
        ({"preprocess__resize_shorter": -5}, "resize_shorter must be between 1"),
        ({"preprocess__resize_shorter": 20}, "smaller than the crop"),
        ({"preprocess__resize_shorter": 10**6}, "resize_shorter must be between 1"),
        ({"input__height": 0, "preprocess__crop": [0, 32]}, "input.height must be between 1"),
        ({"input__width": -1, "preprocess__crop": [32, -1]}, "input.width must be between 1"),
        ({"preprocess__crop": [32, 30]}, "crop must equal"),
        ({"preprocess__scale": 0}, "scale must be positive"),
        ({"preprocess__std": [0.2, 0.0, 0.2]}, "std must be positive"),
        ({"preprocess__mean": [0.5, float("nan"), 0.5]}, "finite"),
        ({"output__kind": "softmax"}, "output.kind must be one of logits, probabilities"),
        ({"output__kind": "scores"}, "output.kind"),
        ({"output__name": ""}, "output.name is empty"),
        ({"labels": ["cat", "dog", "cat"]}, "unique; ['cat']"),
        ({"labels": ["cat", " ", "dog"]}, "label 1 is blank"),
        ({"labels": []}, "labels is empty"),
        ({"labels": "cat"}, "labels is a list"),
    ],
)
def test_inconsistent_contracts_are_refused_with_what_to_fix(changes: dict[str, Any], words: str) -> None:
    with pytest.raises(ContractError) as info:
        parse_contract(doc(**changes))
    assert words in str(info.value)


def test_probability_outputs_are_a_known_kind() -> None:
    validate(replace(rgb_contract(), output=replace(rgb_contract().output, kind="probabilities")))


def test_metadata_that_is_not_an_object_is_refused() -> None:
    for text in ("[]", '"x"', "{", "[" * 5000 + "]" * 5000):
        with pytest.raises(ContractError):
            parse_contract(text)


def test_contract_equality_is_by_value() -> None:
    assert ModelContract.from_dict(json.loads(doc())) == rgb_contract()
