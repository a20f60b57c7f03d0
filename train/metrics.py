"""Classification metrics from a confusion matrix (rows: true class, columns: predicted).

Animals-10 is imbalanced (3.4 : 1), so balanced accuracy and macro-F1 are
reported beside plain accuracy.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.divide(a, b, out=np.zeros_like(a, dtype=np.float64), where=b > 0)


def classification_metrics(confusion: np.ndarray, labels: list[str]) -> dict[str, Any]:
    """Accuracy, balanced accuracy, macro-F1 and per-class precision/recall/F1/support."""
    cm = np.asarray(confusion, dtype=np.int64)
    tp = np.diag(cm).astype(np.float64)
    support, predicted = cm.sum(axis=1).astype(np.float64), cm.sum(axis=0).astype(np.float64)
    precision, recall = _safe_div(tp, predicted), _safe_div(tp, support)
    f1 = _safe_div(2 * precision * recall, precision + recall)
    present = support > 0  # a class absent from the split would drag the means to 0 unfairly
    n = int(cm.sum())
    return {
        "n": n,
        "accuracy": float(tp.sum() / n) if n else 0.0,
        "balanced_accuracy": float(recall[present].mean()) if present.any() else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "per_class": {
            label: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        },
        "confusion_matrix": cm.tolist(),
    }
