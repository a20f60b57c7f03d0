"""`python -m train` refuses a newcomer's mistakes in one line, exit 2, before spending time on them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from tests.train.helpers import write_folder_dataset  # noqa: E402
from train.__main__ import main  # noqa: E402

pytestmark = [pytest.mark.torch]
ROOT = Path(__file__).resolve().parents[2]
FAST = [
    "--arch",
    "tinycnn",
    "--weights",
    "none",
    "--img-size",
    "32",
    "--epochs",
    "1",
    "--no-progress",
    "--workers",
    "0",
]


def refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run the command's main() as the CLI does; return its one stderr line."""
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2, err
    lines = [line for line in err.splitlines() if line.startswith("python -m train: error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_unknown_arch_is_refused_before_any_image_is_generated(tmp_path: Path, capsys) -> None:
    line = refused(["--data", "synthetic", "--out", str(tmp_path / "run"), "--arch", "vgg17"], capsys)
    assert "--arch vgg17: not a torchvision classification model (try vgg16" in line
    assert not (tmp_path / "run").exists()


def test_six_images_are_too_few(tmp_path: Path, capsys) -> None:
    root = write_folder_dataset(tmp_path / "six", per_class=2)
    line = refused(["--data", str(root), "--out", str(tmp_path / "run"), *FAST], capsys)
    assert "fewer than 10 images in blue 2, green 2, red 2" in line and "--min-per-class 0" in line
    assert not (tmp_path / "run" / "best.pt").exists()


def test_empty_class_folder_is_named(tmp_path: Path, capsys) -> None:
    root = write_folder_dataset(tmp_path / "data", per_class=10)
    (root / "purple").mkdir()
    line = refused(["--data", str(root), "--out", str(tmp_path / "run"), *FAST], capsys)
    assert "class folder(s) with no readable image" in line and "purple" in line


def test_only_empty_class_folders(tmp_path: Path, capsys) -> None:
    for name in ("cats", "dogs"):
        (tmp_path / "data" / name).mkdir(parents=True)
    line = refused(["--data", str(tmp_path / "data"), "--out", str(tmp_path / "run"), *FAST], capsys)
    assert "no readable image" in line and "cats, dogs" in line


def test_one_class_is_not_a_classifier(tmp_path: Path, capsys) -> None:
    root = write_folder_dataset(tmp_path / "data", per_class=12, classes=("red",))
    line = refused(["--data", str(root), "--out", str(tmp_path / "run"), *FAST], capsys)
    assert "at least two class folders" in line and "'red'" in line


def test_min_per_class_zero_trains_anyway_and_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = write_folder_dataset(tmp_path / "six", per_class=2)
    main(["--data", str(root), "--out", str(tmp_path / "run"), *FAST, "--min-per-class", "0"])
    assert (tmp_path / "run" / "best.pt").exists()
    assert "the val split is empty" in caplog.text


@pytest.mark.parametrize(
    ("data", "expected"),
    [("nonexistent", "--data {p}: not a folder"), ("file.jpg", "--data {p}: not a folder")],
)
def test_data_that_is_not_a_folder(tmp_path: Path, capsys, data: str, expected: str) -> None:
    path = tmp_path / data
    if data.endswith(".jpg"):
        path.write_bytes(b"\xff\xd8")
    line = refused(["--data", str(path), "--out", str(tmp_path / "run"), *FAST], capsys)
    assert expected.format(p=path) in line


def test_missing_weights_file(tmp_path: Path, capsys) -> None:
    argv = ["--data", "synthetic", "--out", str(tmp_path / "run"), "--arch", "resnet18", "--weights", "nope.pth"]
    line = refused(argv, capsys)
    assert "--weights nope.pth: no such file; use imagenet, none, or a path to a state_dict file" in line
    assert not (tmp_path / "run").exists()


def test_weights_of_another_architecture(tmp_path: Path, capsys) -> None:
    from torchvision import models

    weights = tmp_path / "resnet18.pth"
    torch.save(models.resnet18(weights=None).state_dict(), weights)
    root = write_folder_dataset(tmp_path / "data", per_class=10)
    argv = ["--data", str(root), "--out", str(tmp_path / "run"), *FAST, "--arch", "mobilenet_v3_small"]
    line = refused([*argv, "--weights", str(weights)], capsys)
    assert f"--weights {weights}: the weights do not fit MobileNetV3" in line and "another architecture" in line


def test_imagenet_weights_offline_name_the_ways_out(tmp_path: Path) -> None:
    """The real command, offline (a proxy that refuses connections), with an empty weights cache."""
    root = write_folder_dataset(tmp_path / "data", per_class=10)
    env = {**os.environ, "TORCH_HOME": str(tmp_path / "torch"), "https_proxy": "http://127.0.0.1:9"}
    env.update(HTTPS_PROXY=env["https_proxy"], no_proxy="", NO_PROXY="")
    env.pop("DEBUG", None)
    argv = ["--data", str(root), "--out", str(tmp_path / "run"), "--arch", "mobilenet_v3_small", "--epochs", "1"]
    proc = subprocess.run(
        [sys.executable, "-m", "train", *argv, "--no-progress"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("python -m train: error:")]
    assert "--weights imagenet: could not get mobilenet_v3_small's ImageNet weights" in line
    assert "mobilenet_v3_small-047dcff4.pth" in line and "--weights PATH" in line and "--weights none" in line


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "train", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "run"), "--debug"]
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "not a folder" in proc.stderr
