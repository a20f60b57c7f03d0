"""Image folders -> a reproducible, duplicate-safe split manifest -> datasets.

The manifest (``split.csv``: file, label, split, sha256) is the record of which
image went where; its sha256 travels in the checkpoint and the model metadata.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from service.contract import Color
from service.imaging import DecodeOptions, ImageRejected, load_image
from train.labels import english_labels

log = logging.getLogger("train")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".heic", ".heif", ".avif"}
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Entry:
    file: str  # relative to the data root, with forward slashes
    label: int
    split: str
    sha256: str


def image_root(data: Path) -> Path:
    """Kaggle's Animals-10 keeps its class folders under ``raw-img/``."""
    return data / "raw-img" if (data / "raw-img").is_dir() else data


def list_classes(root: Path) -> list[str]:
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise FileNotFoundError(f"no class folders under {root}; expected <root>/<class>/<image files>")
    return folders


def _is_readable(data: bytes) -> bool:
    try:
        load_image(data, "RGB", DecodeOptions(max_pixels=200_000_000))
        return True
    except ImageRejected:
        return False


def scan(data: Path) -> tuple[list[str], list[tuple[str, int, str]], list[str]]:
    """Walk the class folders; return (folders, [(file, label, sha256)], skipped files).

    Every file is decoded once with the shared rule, so unreadable files
    (truncated, empty, stray text) are found here and never reach training.
    """
    root = image_root(data)
    folders = list_classes(root)
    items, skipped = [], []
    for label, folder in enumerate(folders):
        for path in sorted((root / folder).rglob("*")):
            if not path.is_file() or path.name.startswith("."):
                continue
            raw = path.read_bytes()
            rel = path.relative_to(root).as_posix()
            if _is_readable(raw):
                items.append((rel, label, hashlib.sha256(raw).hexdigest()))
            else:
                skipped.append(rel)
    if skipped:
        log.warning("skipped %d unreadable file(s), e.g. %s", len(skipped), skipped[0])
    return folders, items, skipped


def stratified_split(items: list[tuple[str, int, str]], seed: int,
                     fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> list[Entry]:
    """Per class, shuffle groups of byte-identical files and cut them 80/10/10.

    Grouping by content hash keeps duplicates inside one split; sorting before
    the seeded shuffle makes the split identical on any machine.
    """
    groups: dict[tuple[int, str], list[str]] = defaultdict(list)
    for file, label, digest in items:
        groups[(label, digest)].append(file)
    entries: list[Entry] = []
    seen_digest: dict[str, str] = {}
    for label in sorted({lab for lab, _ in groups}):
        keys = sorted(d for lab, d in groups if lab == label)
        random.Random(f"{seed}:{label}").shuffle(keys)
        n = len(keys)
        n_val, n_test = round(n * fractions[1]), round(n * fractions[2])
        for i, digest in enumerate(keys):
            split = "test" if i < n_test else "val" if i < n_test + n_val else "train"
            split = seen_digest.setdefault(digest, split)  # same bytes under two classes: one split
            entries.extend(Entry(f, label, split, digest) for f in sorted(groups[(label, digest)]))
    return sorted(entries, key=lambda e: e.file)


def write_manifest(entries: list[Entry], path: Path) -> str:
    """Write ``split.csv`` and return its sha256."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["file", "label", "split", "sha256"])
    for e in entries:
        writer.writerow([e.file, e.label, e.split, e.sha256])
    text = buf.getvalue().encode()
    path.write_bytes(text)
    return hashlib.sha256(text).hexdigest()


def read_manifest(path: Path) -> list[Entry]:
    with open(path, newline="") as fh:
        return [Entry(r["file"], int(r["label"]), r["split"], r["sha256"]) for r in csv.DictReader(fh)]


@dataclass
class Prepared:
    root: Path
    folders: list[str]
    labels: list[str]
    entries: list[Entry]
    skipped: list[str]
    manifest_sha256: str


def prepare_split(data: Path, out: Path, seed: int) -> Prepared:
    """Scan ``data``, split it, and write ``out/split.csv`` (reused as is on resume)."""
    manifest = out / "split.csv"
    folders, items, skipped = scan(data)
    if manifest.exists():
        entries = read_manifest(manifest)
    else:
        entries = stratified_split(items, seed)
        write_manifest(entries, manifest)
    digest = hashlib.sha256(manifest.read_bytes()).hexdigest()
    return Prepared(image_root(data), folders, english_labels(folders), entries, skipped, digest)


class ImageFileDataset:
    """Files from the manifest, decoded by the shared rule, then a torchvision transform."""

    def __init__(self, root: Path, entries: list[Entry], color: Color, transform: Callable) -> None:
        self.root, self.entries, self.color, self.transform = root, entries, color, transform

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i: int):
        e = self.entries[i]
        img = load_image((self.root / e.file).read_bytes(), self.color, DecodeOptions(max_pixels=200_000_000))
        return self.transform(img), e.label
