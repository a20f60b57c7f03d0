"""The same command under torchrun: 2 processes, gloo on CPU.

What "agrees" means here: both runs write the byte-identical split (same
sha256), and the test metrics the 2-process run reduced across its ranks are
exactly those of evaluating its best.pt in one process on the whole test
split (so nothing is lost or double-counted by sharding). The two runs' trained
weights differ, because each rank sees half of every epoch in other batches
(and the global batch is twice as large); both must learn.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from train.checkpoint import load_checkpoint, preprocess_spec, rebuild_model  # noqa: E402
from train.config import parse_config  # noqa: E402
from train.data import ImageFileDataset, read_manifest  # noqa: E402
from train.distributed import Dist  # noqa: E402
from train.engine import Precision, evaluate  # noqa: E402
from train.run import train  # noqa: E402
from train.transforms import eval_transform  # noqa: E402

pytestmark = [pytest.mark.torch, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
ARGS = [
    "--data",
    "synthetic",
    "--synthetic-per-class",
    "16",
    "--img-size",
    "32",
    "--epochs",
    "4",
    "--no-progress",
    "--workers",
    "0",
    "--scan-workers",
    "1",
]


def _torchrun(out: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "train",
        *ARGS,
        "--out",
        str(out),
        "--device",
        "cpu",
    ]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)


def _evaluate_alone(out: Path) -> list[list[int]]:
    """best.pt on the whole test split, one process, no sharding."""
    ckpt = load_checkpoint(out / "best.pt")
    spec = preprocess_spec(ckpt)
    entries = [e for e in read_manifest(out / "split.csv") if e.split == "test"]
    ds = ImageFileDataset(Path(ckpt["data_root"]), entries, "RGB", eval_transform(spec))
    loader = torch.utils.data.DataLoader(ds, batch_size=7)  # another batch size on purpose
    _, confusion = evaluate(rebuild_model(ckpt), loader, Precision(torch.device("cpu")), Dist(), 10, "", False)
    return confusion.tolist()


def test_torchrun_two_processes_agree_with_one(tmp_path: Path) -> None:
    done = _torchrun(tmp_path / "ddp")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.count("epoch 4/4") == 1  # rank 0 alone prints
    ddp = json.loads((tmp_path / "ddp" / "report.json").read_text())
    single = train(parse_config([*ARGS, "--out", str(tmp_path / "one")]))

    assert ddp["world_size"] == 2 and single["world_size"] == 1
    assert ddp["split_sha256"] == single["split_sha256"]
    assert ddp["test"]["n"] == single["test"]["n"] == 20  # every test image counted once, none padded
    assert ddp["test"]["confusion_matrix"] == _evaluate_alone(tmp_path / "ddp")
    assert ddp["test_accuracy"] >= 0.5 and single["test_accuracy"] >= 0.5  # chance is 0.1
    assert sorted(p.name for p in (tmp_path / "ddp").glob("*.p*")) == [
        "best.pt",
        "confusion.png",
        "curves.png",
        "last.pt",
    ]
