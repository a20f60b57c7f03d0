"""The training benchmark runs on a CPU in seconds and prints its three figures side by side."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

pytest.importorskip("torch")

from bench.train_bench import main  # noqa: E402

pytestmark = [pytest.mark.torch]
TINY = ["--quick", "--images", "40", "--size", "64x48", "--img-size", "32", "--steps", "2", "--workers", "0"]


def test_help_runs_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--help", "--work", str(tmp_path)])
    assert done.value.code == 0 and "end-to-end" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []


def test_prints_loader_model_and_end_to_end_for_both_trainings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*TINY, "--loader", "cpu,gpu", "--work", str(tmp_path), "--json", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert (
        "| loader | training | loader-only img/s | model-only img/s | end-to-end img/s | end-to-end / model-only |"
        in out
    )
    rows = re.findall(r"^\| (cpu|gpu) \(workers 0\) \| (frozen features|all layers) \|([^\n]*)$", out, re.M)
    assert [(r[0], r[1]) for r in rows] == [
        ("cpu", "frozen features"),
        ("cpu", "all layers"),
        ("gpu", "frozen features"),
        ("gpu", "all layers"),
    ]
    for *_, cells in rows:
        assert all(float(c.replace(",", "")) > 0 for c in cells.strip(" |").split(" | "))
    saved = json.loads((tmp_path / "r.json").read_text())
    assert [r["loader"] for r in saved["rows"]] == ["cpu", "gpu"]
    for row in saved["rows"]:
        for mode in ("frozen", "all"):
            m = row[mode]
            assert m["ratio"] == pytest.approx(m["end_to_end"] / m["model_only"]) and row["loader_only"] > 0
    assert sum(saved["rows"][1]["decodes"].values()) > 0  # the GPU path counted its decodes


def test_a_bad_option_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--quick", "--loader", "tpu", "--work", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: unknown --modes/--loader value(s) ['tpu']")
    assert main(["--quick", "--size", "400", "--work", str(tmp_path)]) == 2
