"""The split is stratified, reproducible from the seed, and never puts identical bytes in two splits."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import pytest

from tests.train.helpers import jpeg_bytes, write_folder_dataset
from train.data import prepare_split, read_manifest, scan, stratified_split


def _items(n_per_class: int = 50, classes: int = 3) -> list[tuple[str, int, str]]:
    return [(f"c{c}/{i:03d}.jpg", c, f"{c:02d}{i:062d}") for c in range(classes) for i in range(n_per_class)]


def test_split_is_stratified_80_10_10() -> None:
    entries = stratified_split(_items(50), seed=0)
    counts = Counter((e.label, e.split) for e in entries)
    for label in range(3):
        assert (counts[(label, "train")], counts[(label, "val")], counts[(label, "test")]) == (40, 5, 5)


def test_same_seed_same_split_other_seed_other_split() -> None:
    a, b, c = (stratified_split(_items(), seed) for seed in (7, 7, 8))
    assert a == b
    assert [e.split for e in a] != [e.split for e in c]


def test_input_order_does_not_change_the_split() -> None:
    items = _items()
    assert stratified_split(items, 3) == stratified_split(list(reversed(items)), 3)


def test_byte_identical_files_share_one_split_within_and_across_classes(tmp_path: Path) -> None:
    root = write_folder_dataset(tmp_path / "data", per_class=20)
    same = jpeg_bytes((10, 10, 10), seed=999)
    for i in range(6):  # six copies inside "red", three copies of the same bytes in "blue"
        (root / "red" / f"dup{i}.jpg").write_bytes(same)
    for i in range(3):
        (root / "blue" / f"dup{i}.jpg").write_bytes(same)
    for seed in range(5):
        out = tmp_path / f"run{seed}"
        prepare_split(root, out, seed)
        by_digest: dict[str, set[str]] = {}
        for e in read_manifest(out / "split.csv"):
            by_digest.setdefault(e.sha256, set()).add(e.split)
        assert all(len(splits) == 1 for splits in by_digest.values())
        assert sum(1 for e in read_manifest(out / "split.csv") if e.file.split("/")[-1].startswith("dup")) == 9


def test_manifest_and_sha_are_identical_when_rebuilt(tmp_path: Path) -> None:
    root = write_folder_dataset(tmp_path / "data", per_class=10)
    a = prepare_split(root, tmp_path / "a", seed=1)
    b = prepare_split(root, tmp_path / "b", seed=1)
    assert (tmp_path / "a" / "split.csv").read_bytes() == (tmp_path / "b" / "split.csv").read_bytes()
    assert a.manifest_sha256 == b.manifest_sha256 and len(a.manifest_sha256) == 64
    assert prepare_split(root, tmp_path / "c", seed=2).manifest_sha256 != a.manifest_sha256


def test_parallel_scan_matches_serial_scan(tmp_path: Path) -> None:
    root = write_folder_dataset(tmp_path / "data", per_class=30)  # 90 files: above the pool threshold
    (root / "red" / "broken.jpg").write_bytes(b"not an image")
    assert scan(root, workers=2) == scan(root, workers=1)


def test_unreadable_files_are_skipped_with_one_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = write_folder_dataset(tmp_path / "data", per_class=8)
    good = (root / "red" / "000.jpg").read_bytes()
    (root / "red" / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (root / "green" / "empty.jpg").write_bytes(b"")
    (root / "blue" / "notes.jpg").write_text("this is a text file with a .jpg name\n")
    with caplog.at_level(logging.WARNING, logger="train"):
        prepared = prepare_split(root, tmp_path / "run", seed=0)
    assert sorted(prepared.skipped) == ["blue/notes.jpg", "green/empty.jpg", "red/truncated.jpg"]
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
    assert "skipped 3 unreadable" in caplog.text
    assert len(prepared.entries) == 24 and not any("truncated" in e.file for e in prepared.entries)
    assert (tmp_path / "run" / "skipped.txt").read_text().splitlines() == sorted(prepared.skipped)


def test_reuse_reads_the_manifest_without_rescanning(tmp_path: Path) -> None:
    root = write_folder_dataset(tmp_path / "data", per_class=8)
    first = prepare_split(root, tmp_path / "run", seed=0)
    (root / "red" / "late.jpg").write_bytes(jpeg_bytes((1, 2, 3), seed=5))  # added after the split was made
    again = prepare_split(root, tmp_path / "run", seed=0, reuse=True)
    assert again.entries == first.entries and again.manifest_sha256 == first.manifest_sha256
