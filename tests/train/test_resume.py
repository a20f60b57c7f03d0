"""--resume continues from last.pt: a 2-epoch run resumed to 3 epochs equals a straight 3-epoch run."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from train.checkpoint import load_checkpoint  # noqa: E402
from train.config import parse_config  # noqa: E402
from train.run import train  # noqa: E402

pytestmark = [pytest.mark.torch]


def _run(data: Path, out: Path, epochs: int, *extra: str) -> dict:
    return train(
        parse_config(
            [
                "--data",
                str(data),
                "--out",
                str(out),
                "--arch",
                "tinycnn",
                "--weights",
                "none",
                "--img-size",
                "32",
                "--epochs",
                str(epochs),
                "--t-max",
                "3",
                "--lr",
                "5e-3",
                "--no-progress",
                "--workers",
                "0",
                *extra,
            ]
        )
    )


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from train.synthetic import make_synthetic

    return make_synthetic(tmp_path_factory.mktemp("data"), per_class=10, seed=0, max_side=64)


@pytest.mark.parametrize(
    "path",
    [
        ["--loader", "cpu", "--workers", "0"],
        # persistent workers: augmentation keyed by (seed, epoch, index), not by a worker's RNG state
        pytest.param(["--loader", "cpu", "--workers", "2"], marks=pytest.mark.slow, id="cpu-persistent-workers"),
        pytest.param(["--loader", "gpu", "--workers", "1"], marks=pytest.mark.slow, id="gpu-path-on-cpu"),
    ],
    ids=lambda p: "-".join(p).replace("--", "") if isinstance(p, list) else None,
)
def test_resume_continues_and_matches_an_uninterrupted_run(data: Path, tmp_path: Path, path: list[str]) -> None:
    first = _run(data, tmp_path / "resumed", 2, *path)
    assert [h["epoch"] for h in first["epochs"]] == [1, 2]
    resumed = _run(data, tmp_path / "resumed", 3, "--resume", *path)
    straight = _run(data, tmp_path / "straight", 3, *path)

    assert [h["epoch"] for h in resumed["epochs"]] == [1, 2, 3]
    assert resumed["epochs"][:2] == first["epochs"]  # the old rows are kept, not re-run
    keys = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr")
    for a, b in zip(resumed["epochs"], straight["epochs"], strict=True):
        assert {k: a[k] for k in keys} == pytest.approx({k: b[k] for k in keys}, rel=1e-5, abs=1e-7)

    last_r, last_s = (load_checkpoint(tmp_path / name / "last.pt") for name in ("resumed", "straight"))
    assert last_r["epoch"] == 3 and last_r["scheduler"]["last_epoch"] == 3
    for name, tensor in last_s["state_dict"].items():
        torch.testing.assert_close(last_r["state_dict"][name], tensor, rtol=1e-5, atol=1e-6)


def test_resume_without_last_pt_starts_fresh(data: Path, tmp_path: Path) -> None:
    report = _run(data, tmp_path / "new", 1, "--resume")
    assert [h["epoch"] for h in report["epochs"]] == [1]


def test_resume_refuses_a_changed_split(data: Path, tmp_path: Path) -> None:
    _run(data, tmp_path / "run", 1)
    manifest = tmp_path / "run" / "split.csv"
    lines = manifest.read_text().splitlines()
    manifest.write_text("\n".join(lines[:-1]) + "\n")  # one image fewer: another split
    with pytest.raises(ValueError, match="another split"):  # (9 images left in a class: allow it, to reach resume)
        _run(data, tmp_path / "run", 2, "--resume", "--min-per-class", "0")
