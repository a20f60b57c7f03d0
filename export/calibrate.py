"""Temperature scaling: one number T, fitted on the validation split, so a served confidence means what it says.

A network's raw softmax is usually over- (or under-) confident: among answers
given with 90% confidence, far fewer (or more) than 90% are right. Dividing
the logits by T before the softmax fixes most of that without changing any
top-1 answer (Guo et al., "On Calibration of Modern Neural Networks", 2017).
T minimises the negative log-likelihood of the validation labels; the NLL is
convex in 1/T, so a golden-section search on log T finds it without torch.

The expected calibration error (ECE) is the gap between confidence and accuracy
averaged over equal-width confidence bins, weighted by how many answers fall in
each; export records it before and after, and draws the reliability diagram.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.model import softmax

T_RANGE = (0.05, 20.0)  # far outside what a sane network needs, inside what float32 logits survive


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of ``labels`` under ``softmax(logits / temperature)``."""
    z = logits.astype(np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-log_p[np.arange(len(labels)), labels].mean())


def reliability(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> list[tuple[float, float, int]]:
    """Per equal-width confidence bin: (mean confidence, accuracy, count); empty bins give (nan, nan, 0)."""
    conf, right = probs.max(axis=1), probs.argmax(axis=1) == labels
    which = np.minimum((conf * bins).astype(int), bins - 1)  # confidence 1.0 belongs to the last bin
    out = []
    for b in range(bins):
        mask = which == b
        n = int(mask.sum())
        out.append((float(conf[mask].mean()), float(right[mask].mean()), n) if n else (math.nan, math.nan, 0))
    return out


def ece(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error: sum over bins of |accuracy - confidence| x (share of answers in the bin)."""
    total = len(labels)
    return float(sum(n / total * abs(acc - conf) for conf, acc, n in reliability(probs, labels, bins) if n))


def fit_temperature(logits: np.ndarray, labels: np.ndarray, iters: int = 100) -> float:
    """The T in ``T_RANGE`` that minimises the validation NLL (golden-section search on log T)."""
    lo, hi = math.log(T_RANGE[0]), math.log(T_RANGE[1])
    g = (math.sqrt(5) - 1) / 2
    a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    fa, fb = nll(logits, labels, math.exp(a)), nll(logits, labels, math.exp(b))
    for _ in range(iters):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - g * (hi - lo)
            fa = nll(logits, labels, math.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + g * (hi - lo)
            fb = nll(logits, labels, math.exp(b))
    return math.exp((lo + hi) / 2)


@dataclass(frozen=True)
class Fit:
    temperature: float
    n: int
    bins: int
    ece_before: float
    ece_after: float
    nll_before: float
    nll_after: float
    at_bound: bool = False  # an end of T_RANGE fits as well: no optimum inside it (e.g. every image right by far)

    def measured_on(self, logits: np.ndarray, labels: np.ndarray) -> dict[str, float | int]:
        """ECE and NLL before/after on other images (the test split): the out-of-sample check."""
        return {
            "n": len(labels),
            "ece_before": ece(softmax(logits.astype(np.float64)), labels, self.bins),
            "ece_after": ece(softmax(logits.astype(np.float64) / self.temperature), labels, self.bins),
            "nll_before": nll(logits, labels),
            "nll_after": nll(logits, labels, self.temperature),
        }


def calibrate(logits: np.ndarray, labels: np.ndarray, bins: int = 15) -> Fit:
    """Fit T on these (validation) logits and measure what it changed there."""
    if len(labels) == 0:
        raise ValueError("calibration needs at least one labelled image")
    t = fit_temperature(logits, labels)
    z = logits.astype(np.float64)
    best = nll(logits, labels, t)
    ends = [nll(logits, labels, end) for end in T_RANGE]
    return Fit(
        temperature=t,
        n=len(labels),
        bins=bins,
        ece_before=ece(softmax(z), labels, bins),
        ece_after=ece(softmax(z / t), labels, bins),
        nll_before=nll(logits, labels),
        nll_after=best,
        at_bound=min(ends) <= best + 1e-9,
    )


def reliability_diagram(logits: np.ndarray, labels: np.ndarray, fit: Fit, path: Path, title: str) -> None:
    """Accuracy against confidence per bin, before and after scaling, beside the diagonal of perfect calibration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6), sharey=True)
    z = logits.astype(np.float64)
    panels = [
        (softmax(z), f"raw softmax (T = 1): ECE {fit.ece_before * 100:.2f}%"),
        (softmax(z / fit.temperature), f"T = {fit.temperature:.3f}: ECE {fit.ece_after * 100:.2f}%"),
    ]
    edges = np.linspace(0, 1, fit.bins + 1)
    width = 1 / fit.bins
    for ax, (probs, name) in zip(axes, panels, strict=True):
        stats = reliability(probs, labels, fit.bins)
        acc = [a if n else 0.0 for _, a, n in stats]
        conf = [c if n else 0.0 for c, _, n in stats]
        ax.bar(edges[:-1], acc, width=width, align="edge", color="#2f6fed", edgecolor="white", label="accuracy")
        low, gap = np.minimum(conf, acc), np.abs(np.subtract(conf, acc))
        ax.bar(edges[:-1], gap, bottom=low, width=width, align="edge", fill=False, hatch="//",
               edgecolor="#e5484d", linewidth=0.8, label="gap to mean confidence")  # fmt: skip
        ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence (top-1 probability)", title=name)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy")
    axes[0].legend(loc="upper left", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
