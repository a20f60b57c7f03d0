"""``curves.png`` and ``confusion.png``: drawn with matplotlib's Agg backend (no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_curves(history: list[dict], path: Path) -> None:
    """Loss and accuracy per epoch, train vs val, side by side."""
    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4), dpi=110)
    for ax, key, title in ((ax_loss, "loss", "Loss"), (ax_acc, "accuracy", "Accuracy")):
        ax.plot(epochs, [h[f"train_{key}"] for h in history], "o-", label="train")
        ax.plot(epochs, [h[f"val_{key}"] for h in history], "s-", label="val")
        ax.set(title=title, xlabel="epoch", ylabel=key)
        ax.set_xticks(epochs)
        ax.grid(alpha=0.3)
        ax.legend()
    ax_acc.set_ylim(0, 1.02)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_confusion(confusion: list[list[int]], labels: list[str], path: Path, title: str) -> None:
    """Counts in each cell; colour by row share, so small classes are as readable as big ones."""
    cm = np.asarray(confusion, dtype=np.int64)
    share = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    size = max(5.0, 0.55 * len(labels) + 2.5)
    fig, ax = plt.subplots(figsize=(size, size), dpi=110)
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ticks = np.arange(len(labels))
    ax.set_xticks(ticks, labels, rotation=45, ha="right")
    ax.set_yticks(ticks, labels)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    for i in range(len(labels)):
        for j in range(len(labels)):
            if cm[i, j]:
                ax.text(
                    j,
                    i,
                    str(cm[i, j]),
                    ha="center",
                    va="center",
                    fontsize=9,
                    color="white" if share[i, j] > 0.5 else "black",
                )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
