"""The offline stand-in data: a size option for photo-sized JPEGs, and reuse only with the same arguments."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from train.synthetic import make_synthetic, parse_size


def sizes(root: Path) -> list[tuple[int, int]]:
    out = []
    for path in sorted((root / "raw-img").rglob("*.jpeg")):
        with Image.open(path) as img:
            out.append(img.size)
    return out


def test_size_option_draws_each_side_within_ten_percent(tmp_path: Path) -> None:
    got = sizes(make_synthetic(tmp_path, per_class=3, size=(400, 300)))
    assert len(got) == 30
    assert all(360 <= w <= 440 and 270 <= h <= 330 for w, h in got)
    assert len(set(got)) > 10  # they vary, as photos do


def test_default_sizes_are_unchanged_and_a_new_size_rewrites_the_folder(tmp_path: Path) -> None:
    small = sizes(make_synthetic(tmp_path, per_class=2, max_side=64))
    assert all(32 <= side < 64 for size in small for side in size)
    assert sizes(make_synthetic(tmp_path, per_class=2, max_side=64)) == small  # reused as is
    big = sizes(make_synthetic(tmp_path, per_class=2, max_side=64, size=(100, 80)))
    assert len(big) == 20 and all(90 <= w <= 110 and 72 <= h <= 88 for w, h in big)


@pytest.mark.parametrize("text", ["400", "400x", "x300", "4x300", "400x300x2", "big"])
def test_a_bad_size_is_a_clear_error(text: str) -> None:
    with pytest.raises(ValueError, match="expected WIDTHxHEIGHT"):
        parse_size(text)
    assert parse_size("400x300") == (400, 300) and parse_size("64X48") == (64, 48)
