"""`python -m export` on the wrong file or folder: one line, exit 1, nothing written; never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from export.__main__ import main  # noqa: E402
from train.checkpoint import load_checkpoint  # noqa: E402

pytestmark = [pytest.mark.torch]
ROOT = Path(__file__).resolve().parents[2]
PREFIX = "export failed, nothing written: "


def refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(PREFIX) and "Traceback" not in err, err
    return err.removeprefix(PREFIX).strip()


def bad_checkpoints(tmp: Path, checkpoint: Path) -> dict[str, tuple[Path, str]]:
    (tmp / "notes.txt").write_text("e" * 200)  # torch.load says `KeyError: 101` or worse on this
    torch.save(torch.nn.Linear(2, 2), tmp / "whole_model.pt")  # a pickled module, not a state dict
    ckpt = load_checkpoint(checkpoint)
    torch.save({**ckpt, "arch": "resnet18"}, tmp / "other_arch.pt")
    torch.save({"state_dict": ckpt["state_dict"]}, tmp / "bare_state.pt")
    onnx_file = tmp / "model.onnx"
    onnx_file.write_bytes(b"\x08\x09\x12\x07pytorch" + b"\x00" * 64)
    return {
        "text": (tmp / "notes.txt", "is not a checkpoint written by `python -m train`"),
        "folder": (checkpoint.parent, f"is a folder; pass {checkpoint}"),
        "missing": (tmp / "nope.pt", "does not exist; train first"),
        "onnx": (onnx_file, "is not a checkpoint written by `python -m train`"),
        "whole_model": (tmp / "whole_model.pt", "holds pickled Python objects (a whole model?)"),
        "state_dict_only": (tmp / "bare_state.pt", "no format 'image-classifier-checkpoint/1' inside"),
        "other_arch": (tmp / "other_arch.pt", "the checkpoint's arch is resnet18, but the weights do not fit ResNet"),
    }


@pytest.mark.parametrize("case", ["text", "folder", "missing", "onnx", "whole_model", "state_dict_only", "other_arch"])
def test_not_a_checkpoint(checkpoint: Path, tmp_path: Path, capsys, case: str) -> None:
    path, expected = bad_checkpoints(tmp_path, checkpoint)[case]
    line = refused(["--checkpoint", str(path), "--out", str(tmp_path / "out")], capsys)
    assert str(path) in line and expected in line
    assert not (tmp_path / "out").exists()


def test_data_root_that_does_not_exist_is_refused(checkpoint: Path, tmp_path: Path, capsys) -> None:
    line = refused(
        ["--checkpoint", str(checkpoint), "--out", str(tmp_path / "out"), "--data-root", "/nonexistent"], capsys
    )
    assert line == "--data-root /nonexistent: not a folder; pass the image folder the run was trained on"
    assert not (tmp_path / "out").exists()


def test_data_root_without_the_runs_files_is_refused(checkpoint: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "elsewhere" / "cat").mkdir(parents=True)
    argv = ["--checkpoint", str(checkpoint), "--out", str(tmp_path / "out"), "--data-root", str(tmp_path / "elsewhere")]
    line = refused(argv, capsys)
    assert "none of the run's test-split files (split.csv) are under it" in line


def test_data_root_accepts_the_folder_given_to_train(checkpoint: Path, tmp_path: Path, capsys) -> None:
    """`train --data X` may have been the folder above raw-img/ (Animals-10's layout): export takes the same."""
    data = checkpoint.parent / "synthetic-data"  # train wrote raw-img/ under it
    assert main(["--checkpoint", str(checkpoint), "--out", str(tmp_path / "out"), "--data-root", str(data)]) == 0
    assert "on 10 images from test split" in capsys.readouterr().out


def test_the_real_command_and_debug(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a checkpoint\n")
    base = [sys.executable, "-m", "export", "--checkpoint", str(tmp_path / "notes.txt"), "--out", str(tmp_path / "o")]
    plain = subprocess.run(base, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert plain.returncode == 1 and plain.stderr.count("\n") == 1 and plain.stderr.startswith(PREFIX)
    debug = subprocess.run([*base, "--debug"], cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "CheckpointError" in debug.stderr
