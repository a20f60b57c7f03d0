"""Training learns on the synthetic set and leaves a checkpoint, a report and two readable figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from PIL import Image  # noqa: E402

from tests.train.helpers import write_folder_dataset  # noqa: E402
from train.checkpoint import load_checkpoint, rebuild_model  # noqa: E402
from train.config import parse_config  # noqa: E402
from train.run import train  # noqa: E402

pytestmark = [pytest.mark.torch]
FAST = ["--no-progress", "--workers", "0"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("demo")
    return out, train(parse_config(["--data", "synthetic", "--out", str(out), *FAST]))


def test_synthetic_training_beats_chance_by_far(demo: tuple[Path, dict]) -> None:
    _, report = demo
    assert report["test_accuracy"] >= 0.8  # chance is 0.1
    assert report["test_macro_f1"] >= 0.7 and report["test_balanced_accuracy"] >= 0.8
    assert report["epochs"][-1]["train_loss"] < report["epochs"][0]["train_loss"]


def test_checkpoint_is_self_describing_and_rebuilds(demo: tuple[Path, dict]) -> None:
    out, report = demo
    ckpt = load_checkpoint(out / "best.pt")
    assert ckpt["labels"][:3] == ["dog", "horse", "elephant"]
    assert {k: ckpt["input"][k] for k in ("color", "height", "width")} == {"color": "RGB", "height": 64, "width": 64}
    assert ckpt["preprocess"]["resize_shorter"] == 73 and ckpt["preprocess"]["crop"] == [64, 64]
    assert ckpt["test_accuracy"] == report["test_accuracy"] and ckpt["epoch"] == report["best_epoch"]
    assert ckpt["split_sha256"] == report["split_sha256"]
    assert rebuild_model(ckpt)(torch.zeros(2, 3, 64, 64)).shape == (2, 10)
    assert load_checkpoint(out / "last.pt")["epoch"] == 6


def test_report_has_the_metrics_and_figures(demo: tuple[Path, dict]) -> None:
    out, report = demo
    on_disk = json.loads((out / "report.json").read_text())
    assert on_disk["test_accuracy"] == report["test_accuracy"]
    test = on_disk["test"]
    assert test["n"] == 30 and sum(map(sum, test["confusion_matrix"])) == 30
    assert set(test["per_class"]["dog"]) == {"precision", "recall", "f1", "support"}
    assert on_disk["val"]["n"] == 30 and on_disk["split_counts"] == {"train": 240, "val": 30, "test": 30}
    assert [h["epoch"] for h in on_disk["epochs"]] == list(range(1, 7))
    assert on_disk["train_images_per_s"] > 0 and on_disk["eval_images_per_s"] > 0 and on_disk["wall_seconds"] > 0
    for name in ("curves.png", "confusion.png"):
        with Image.open(out / name) as img:
            assert img.format == "PNG" and min(img.size) >= 400


def test_bad_files_are_counted_in_the_report(tmp_path: Path) -> None:
    root = write_folder_dataset(tmp_path / "data", per_class=10)
    good = (root / "red" / "000.jpg").read_bytes()
    (root / "red" / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (root / "green" / "empty.jpg").write_bytes(b"")
    (root / "blue" / "notes.jpg").write_text("plain text\n")
    report = train(
        parse_config(
            [
                "--data",
                str(root),
                "--out",
                str(tmp_path / "run"),
                "--arch",
                "tinycnn",
                "--weights",
                "none",
                "--img-size",
                "32",
                "--epochs",
                "1",
                *FAST,
            ]
        )
    )
    assert report["skipped_files"] == 3 and len(report["skipped"]) == 3
    assert report["labels"] == ["blue", "green", "red"] and report["test_images"] == 3
