"""Image folders -> a reproducible, duplicate-safe split manifest -> datasets.

The manifest (``split.csv``: file, label, split, sha256) is the record of which
image went where; its sha256 travels in the checkpoint and the model metadata.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import os
import random
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from core.contract import Color
from core.errors import ImageRejected
from core.imaging import DecodeOptions, load_image
from train.labels import english_labels

log = logging.getLogger("train")
SPLITS = ("train", "val", "test")
Item = tuple[str, int, str]  # (file, label, sha256)
MAX_PIXELS = 200_000_000  # training trusts its own files more than the service trusts uploads
_MIN_PARALLEL = 64  # below this a process pool costs more than it saves


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


def check_file(path: Path) -> tuple[bool, str]:
    """(readable, sha256) for one file; runs in a worker process, so it takes only a path."""
    raw = path.read_bytes()
    try:
        load_image(raw, "RGB", DecodeOptions(max_pixels=MAX_PIXELS))
        ok = True
    except ImageRejected:
        ok = False
    return ok, hashlib.sha256(raw).hexdigest()


def _check_all(paths: list[Path], workers: int, progress: bool) -> list[tuple[bool, str]]:
    """Decode every file once, in a process pool sized to the machine (26k files take minutes serially)."""
    workers = (os.cpu_count() or 1) if workers < 0 else workers
    bar = {"total": len(paths), "desc": "checking images", "unit": "img", "disable": not progress, "leave": False}
    if workers <= 1 or len(paths) < _MIN_PARALLEL:
        return [check_file(p) for p in tqdm(paths, **bar)]
    with ProcessPoolExecutor(max_workers=min(workers, 32)) as pool:
        return list(tqdm(pool.map(check_file, paths, chunksize=16), **bar))


def scan(data: Path, workers: int = -1, progress: bool = False) -> tuple[list[str], list[Item], list[str]]:
    """Walk the class folders; return (folders, [(file, label, sha256)], skipped files).

    Every file is decoded once with the shared rule, so unreadable files
    (truncated, empty, stray text) are found here and never reach training.
    """
    root = image_root(data)
    folders = list_classes(root)
    found = [
        (path, label)
        for label, folder in enumerate(folders)
        for path in sorted((root / folder).rglob("*"))
        if path.is_file() and not path.name.startswith(".")
    ]
    items, skipped = [], []
    for (path, label), (ok, digest) in zip(found, _check_all([p for p, _ in found], workers, progress), strict=True):
        rel = path.relative_to(root).as_posix()
        if ok:
            items.append((rel, label, digest))
        else:
            skipped.append(rel)
    if skipped:
        log.warning(
            "skipped %d unreadable file(s) of %d (listed in report.json), e.g. %s", len(skipped), len(found), skipped[0]
        )
    return folders, items, skipped


def stratified_split(
    items: list[Item], seed: int, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
) -> list[Entry]:
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
class SplitData:
    """A data source after the split: what the datasets, the checkpoint and the report need."""

    root: Path
    folders: list[str]
    labels: list[str]
    entries: list[Entry]
    skipped: list[str]
    manifest_sha256: str
    kind: str = "folder"  # "folder" or "fashion-mnist"
    color: Color = "RGB"
    extra: dict = field(default_factory=dict)

    def split_entries(self, split: str) -> list[Entry]:
        return [e for e in self.entries if e.split == split]


def write_run_split(out: Path, items: list[Item], skipped: list[str], seed: int) -> str:
    """Split ``items`` and write ``split.csv`` and ``skipped.txt`` into the run folder; return the sha256."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "skipped.txt").write_text("".join(f"{s}\n" for s in skipped))
    return write_manifest(stratified_split(items, seed), out / "split.csv")


def manifest_sha256(path: Path) -> str:
    """The split's identity, as recorded in checkpoints and model metadata."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_run_split(out: Path) -> tuple[list[Entry], list[str], str]:
    """(entries, skipped, sha256) of a run folder's split, as written by ``write_run_split``."""
    manifest, skipped = out / "split.csv", out / "skipped.txt"
    names = skipped.read_text().splitlines() if skipped.exists() else []
    return read_manifest(manifest), names, manifest_sha256(manifest)


def prepare_split(
    data: Path, out: Path, seed: int, reuse: bool = False, workers: int = -1, progress: bool = False
) -> SplitData:
    """Scan ``data``, split it, and write ``out/split.csv``.

    With ``reuse`` (``--resume``, or a torchrun rank other than 0) an existing
    manifest is read as is and no file is decoded again.
    """
    root = image_root(data)
    if reuse and (out / "split.csv").exists():
        folders = list_classes(root)
    else:
        folders, items, skipped = scan(data, workers, progress)
        write_run_split(out, items, skipped, seed)
    entries, skipped, digest = read_run_split(out)
    return SplitData(root, folders, english_labels(folders), entries, skipped, digest)


class ImageFileDataset:
    """Files from the manifest, decoded by the shared rule, then a torchvision transform."""

    def __init__(self, root: Path, entries: list[Entry], color: Color, transform: Callable) -> None:
        self.root, self.entries, self.color, self.transform = root, entries, color, transform

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i: int):
        e = self.entries[i]
        img = load_image((self.root / e.file).read_bytes(), self.color, DecodeOptions(max_pixels=MAX_PIXELS))
        return self.transform(img), e.label
