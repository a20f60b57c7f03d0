"""--data fashion-mnist:ROOT trains through torchvision's loader on IDX files the test writes itself."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from tests.train.helpers import write_fashion_mnist  # noqa: E402
from train import fashion  # noqa: E402
from train.checkpoint import load_checkpoint, rebuild_model  # noqa: E402
from train.config import parse_config  # noqa: E402
from train.data import read_manifest  # noqa: E402
from train.run import train  # noqa: E402

pytestmark = [pytest.mark.torch]


def test_fashion_mnist_trains_a_grayscale_model_export_can_rebuild(tmp_path: Path) -> None:
    root = write_fashion_mnist(tmp_path / "fm", n_train=200, n_test=50, gz=True)  # .gz only, as downloaded
    out = tmp_path / "run"
    report = train(
        parse_config(
            [
                "--data",
                f"fashion-mnist:{root}",
                "--out",
                str(out),
                "--epochs",
                "3",
                "--no-download",
                "--no-progress",
                "--workers",
                "0",
            ]
        )
    )
    ckpt = load_checkpoint(out / "best.pt")
    assert {k: ckpt["input"][k] for k in ("color", "height", "width")} == {"color": "L", "height": 28, "width": 28}
    assert ckpt["preprocess"]["resize_shorter"] == 28 and ckpt["preprocess"]["crop"] == [28, 28]
    assert ckpt["preprocess"]["mean"] == list(fashion.MEAN) and ckpt["preprocess"]["std"] == list(fashion.STD)
    assert ckpt["labels"][0] == "T-shirt/top" and len(ckpt["labels"]) == 10
    assert ckpt["data_kind"] == "fashion-mnist"
    model = rebuild_model(ckpt)  # what export calls
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)

    entries = read_manifest(out / "split.csv")
    assert len(entries) == 250 and {e.split for e in entries} == {"train", "val", "test"}
    assert "train/00012" in {e.file for e in entries} and "test/00003" in {e.file for e in entries}
    assert report["test_images"] == 20 and report["test_accuracy"] > 0.3  # 25 a class: round(2.5) = 2; chance 0.1


def test_missing_files_without_download_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="FashionMNIST/raw"):
        fashion.prepare(tmp_path / "nothing", tmp_path / "run", seed=0, download=False)


def test_source_names() -> None:
    assert fashion.parse_source("fashion-mnist") == fashion.DEFAULT_ROOT
    assert fashion.parse_source("fashion-mnist:/data/fm") == Path("/data/fm")
