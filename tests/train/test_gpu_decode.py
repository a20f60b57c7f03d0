"""Routing and decoding of the GPU input path, on a CPU: every file either reaches the device decoder or
takes the project's decode rule (exactly), is counted, and nothing crashes.

On a CPU, ``torchvision.io.decode_jpeg`` with a list is libjpeg-turbo rather than
nvJPEG; a decoder that rejects chosen files stands in for nvJPEG's refusals.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torchvision.io import decode_jpeg  # noqa: E402

from core.imaging import load_image  # noqa: E402
from tests.train.files import ROUTE, encode, kinds, photo  # noqa: E402
from train.augment import Recipe, sample_params, sample_rng  # noqa: E402
from train.data import Entry  # noqa: E402
from train.gpu_decode import DeviceDecoder, RawImages, collate_raw, device_route  # noqa: E402

pytestmark = [pytest.mark.torch]
RECIPE = Recipe((24, 24))
CPU = torch.device("cpu")


def rule(raw: bytes) -> torch.Tensor:
    """(3, H, W) uint8 by core.imaging's rule: what training, export and the service decode."""
    return torch.from_numpy(np.array(load_image(raw, "RGB"))).permute(2, 0, 1)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Entry], dict[str, bytes]]:
    root = tmp_path_factory.mktemp("kinds")
    (root / "a").mkdir()
    files = kinds()
    entries = []
    for label, (name, raw) in enumerate(files.items()):
        (root / "a" / f"{name}.img").write_bytes(raw)  # the extension says nothing: the bytes decide
        entries.append(Entry(f"a/{name}.img", label, "train", ""))
    return root, entries, files


def test_every_kind_of_file_takes_its_route() -> None:
    for name, raw in kinds().items():
        route, size = device_route(raw)
        assert route == ROUTE[name], name
        assert size == (None if route == "not-jpeg" else (48, 36))
    assert device_route(b"plain text\n") == ("not-jpeg", None)
    assert device_route(b"") == ("not-jpeg", None)


def test_workers_hand_over_bytes_or_the_rules_pixels_with_the_keyed_draw(folder) -> None:
    root, entries, files = folder
    ds = RawImages(root, entries, RECIPE, seed=4)
    for i, (name, raw) in enumerate(files.items()):
        sample = ds[(2, i)]
        assert sample.route == ROUTE[name] and sample.label == i
        if sample.route == "device":
            assert sample.data == raw
            size = (48, 36)
        else:
            assert torch.equal(sample.data.permute(2, 0, 1), rule(raw))  # type: ignore[union-attr]
            size = (sample.data.shape[1], sample.data.shape[0])  # type: ignore[union-attr]
        expected = sample_params(sample_rng(4, 2, i), size, RECIPE)
        assert sample.params == [*expected.row(), size[1], size[0]]
    assert ds[(2, 7)].params[-2:] == [48, 36]  # EXIF orientation 6: the upright image is 36 wide, 48 high


def test_a_mixed_batch_is_decoded_in_order_and_counted(folder) -> None:
    root, entries, files = folder
    ds = RawImages(root, entries, RECIPE, seed=0)
    batch = collate_raw([ds[(1, i)] for i in range(len(files))])
    decoder = DeviceDecoder(CPU)
    images = decoder(batch)
    for image, (name, raw) in zip(images, files.items(), strict=True):
        want = rule(raw)
        assert image.shape == want.shape and image.dtype == torch.uint8
        assert torch.equal(image, want), name  # on a CPU torchvision's libjpeg-turbo decodes as Pillow's
    assert decoder.counts.counts == Counter(ROUTE.values())


def _picky(marker: bytes):
    """A device decoder that refuses any call containing a file with ``marker`` (as nvJPEG refuses some files)."""

    def decode(jpegs, mode, device):
        if any(marker in bytes(j.numpy()) for j in jpegs):
            raise RuntimeError("unsupported JPEG stream")
        return decode_jpeg(jpegs, mode=mode, device=device)

    return decode


def test_files_the_device_rejects_take_the_rule_and_are_counted(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    raws = [encode(photo(seed=k), comment=b"odd" if k == 2 else b"fine") for k in range(5)]
    for k, raw in enumerate(raws):
        (tmp_path / "a" / f"{k}.jpg").write_bytes(raw)
    ds = RawImages(tmp_path, [Entry(f"a/{k}.jpg", 0, "train", "") for k in range(5)], RECIPE, seed=0)
    decoder = DeviceDecoder(CPU, decode=_picky(b"odd"))
    images = decoder(collate_raw([ds[(1, k)] for k in range(5)]))
    assert torch.equal(images[2], rule(raws[2]))
    assert all(im.shape == (3, 36, 48) for im in images)
    assert decoder.counts.counts == Counter({"device": 4, "device-rejected": 1})


def test_a_failed_batch_call_is_retried_file_by_file(tmp_path: Path) -> None:
    calls: list[int] = []

    def one_at_a_time(jpegs, mode, device):
        calls.append(len(jpegs))
        if len(jpegs) > 1:
            raise RuntimeError("batched decode unavailable")
        return decode_jpeg(jpegs, mode=mode, device=device)

    (tmp_path / "a").mkdir()
    for k in range(3):
        (tmp_path / "a" / f"{k}.jpg").write_bytes(encode(photo(seed=k)))
    ds = RawImages(tmp_path, [Entry(f"a/{k}.jpg", 0, "train", "") for k in range(3)], RECIPE, seed=0)
    decoder = DeviceDecoder(CPU, decode=one_at_a_time)
    assert len(decoder(collate_raw([ds[(1, k)] for k in range(3)]))) == 3
    assert calls == [3, 1, 1, 1] and decoder.counts.counts == Counter({"device": 3})
