"""Export's parity gate passes on a good model and fails on a broken one."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from export.pipeline import ExportConfig, ParityError, run_export  # noqa: E402
from train.config import parse_config  # noqa: E402
from train.run import train  # noqa: E402

pytestmark = [pytest.mark.torch]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    train(parse_config(["--data", "synthetic", "--out", str(out), "--epochs", "1", "--synthetic-per-class", "10",
                        "--no-progress", "--workers", "0"]))
    return out / "best.pt"


def test_export_passes_parity(checkpoint: Path, tmp_path: Path) -> None:
    report = run_export(ExportConfig(checkpoint=checkpoint, out=tmp_path / "a"))
    assert report["parity"]["max_abs_diff"] < 1e-4 and report["parity"]["top1_agreement"] == 1.0
    assert (tmp_path / "a" / "model.onnx").is_file()


def test_perturbed_weights_fail_parity_and_leave_no_model(checkpoint: Path, tmp_path: Path) -> None:
    def perturb(model: torch.nn.Module) -> None:
        with torch.no_grad():
            last = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
            last.weight.add_(0.5)

    with pytest.raises(ParityError):
        run_export(ExportConfig(checkpoint=checkpoint, out=tmp_path / "b"), model_hook=perturb)
    assert not (tmp_path / "b" / "model.onnx").exists()
