"""Refuse datasets too small for the accuracy to mean anything, before a minute is spent training.

Six images in three folders split 80/10/10 leave nothing to validate or test
on, and training would "succeed" with a test accuracy measured on 0 images.
Every class needs enough images that val and test hold some of it; empty class
folders and a single class are refused outright. ``--min-per-class 0`` turns
the size rule off for experiments (then only warnings are printed).
"""

from __future__ import annotations

from collections import Counter

from train.data import SPLITS, SplitData
from train.errors import DatasetError

MIN_PER_CLASS = 10  # 80/10/10 rounds to at least one val and one test image from 10 images up


def _listing(pairs: list[tuple[str, int]], limit: int = 5) -> str:
    shown = ", ".join(f"{name} {n}" for name, n in pairs[:limit])
    return shown + (f" and {len(pairs) - limit} more" if len(pairs) > limit else "")


def check_dataset(data: SplitData, min_per_class: int = MIN_PER_CLASS) -> list[str]:
    """Raise ``DatasetError`` for unusable data; return warnings for what is allowed but weak."""
    where = f"under {data.root}"
    if len(data.folders) < 2:
        found = f"only {data.folders[0]!r}" if data.folders else "none"
        raise DatasetError(f"a classifier needs at least two class folders {where}; found {found}")
    per_split = {s: Counter(e.label for e in data.entries if e.split == s) for s in SPLITS}
    total = Counter(e.label for e in data.entries)
    empty = [f for i, f in enumerate(data.folders) if total[i] == 0]
    if empty:
        raise DatasetError(
            f"class folder(s) with no readable image {where}: {', '.join(empty[:8])}; "
            "add images or remove the folder(s)"
        )
    small = [(f, total[i]) for i, f in enumerate(data.folders) if total[i] < min_per_class]
    unseen = [
        f"{f} ({s})"
        for i, f in enumerate(data.folders)
        for s in ("val", "test")
        if min_per_class and not per_split[s][i]
    ]
    if small or unseen:
        problem = f"fewer than {min_per_class} images in {_listing(small)}" if small else f"none in {', '.join(unseen)}"
        raise DatasetError(
            f"too few images to measure anything ({problem}): every class needs some in val and test, "
            f"so at least {min_per_class} distinct images per class; add images, "
            "or pass --min-per-class 0 to train anyway as an experiment"
        )
    if not per_split["train"]:
        raise DatasetError(f"no image landed in the train split ({len(data.entries)} images {where}); add images")
    return [
        f"the {s} split is empty: its accuracy will be measured on 0 images"
        for s in ("val", "test")
        if not per_split[s]
    ]
