"""Metrics from a confusion matrix, checked against values worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from train.metrics import classification_metrics


def test_metrics_from_a_known_confusion_matrix() -> None:
    # true a: 3 right, 1 called b; true b: 2 right; true c: absent from the split, predicted never
    m = classification_metrics(np.array([[3, 1, 0], [0, 2, 0], [0, 0, 0]]), ["a", "b", "c"])
    assert m["n"] == 6 and m["accuracy"] == pytest.approx(5 / 6)
    assert m["per_class"]["a"] == pytest.approx({"precision": 1.0, "recall": 0.75, "f1": 6 / 7, "support": 4})
    assert m["per_class"]["b"] == pytest.approx({"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2})
    assert m["balanced_accuracy"] == pytest.approx((0.75 + 1.0) / 2)  # absent class c left out
    assert m["macro_f1"] == pytest.approx((6 / 7 + 0.8) / 2)
    assert m["confusion_matrix"] == [[3, 1, 0], [0, 2, 0], [0, 0, 0]]
