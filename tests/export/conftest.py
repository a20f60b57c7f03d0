"""One tiny trained run and one full export (FP32 + INT8 + FP16), shared by the export tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")

from export.config import ExportConfig  # noqa: E402
from export.pipeline import run_export  # noqa: E402
from train.config import parse_config  # noqa: E402
from train.run import train  # noqa: E402


@pytest.fixture(scope="package")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tinycnn, 1 epoch on 10 synthetic images per class (test split: 1 per class)."""
    out = tmp_path_factory.mktemp("run")
    train(
        parse_config(
            [
                "--data",
                "synthetic",
                "--out",
                str(out),
                "--epochs",
                "1",
                "--synthetic-per-class",
                "10",
                "--no-progress",
                "--workers",
                "0",
            ]
        )
    )
    return out / "best.pt"


@pytest.fixture(scope="package")
def artifact(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("artifact") / "tiny"
    report = run_export(ExportConfig(checkpoint=checkpoint, out=out, quantize="int8", calibration=40, fp16=True))
    return {"out": out, "report": report}
