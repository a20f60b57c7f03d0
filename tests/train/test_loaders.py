"""Choosing and building the input paths: evaluation stays the service's rule, the train paths agree.

Both ``--loader cpu`` and ``--loader gpu`` (here on a CPU) must give
validation and test tensors identical to ``core.imaging.image_tensor``, the
service's function; their training batches hold the same images in the same
order with the same augmentation draw, resampled by Pillow or by the batched
device code.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from core.imaging import DecodeOptions, image_tensor  # noqa: E402
from core.runtime import cpu_quota  # noqa: E402
from tests.train.files import kinds  # noqa: E402
from tests.train.helpers import write_fashion_mnist  # noqa: E402
from train.__main__ import main  # noqa: E402
from train.batches import DeviceBatches  # noqa: E402
from train.config import parse_config  # noqa: E402
from train.data import MAX_PIXELS, SplitData  # noqa: E402
from train.distributed import Dist  # noqa: E402
from train.engine import Precision  # noqa: E402
from train.gpu_decode import ROUTES, device_route  # noqa: E402
from train.loaders import default_workers, make_loaders, pick_loader, prepare_data, preprocess_spec  # noqa: E402
from train.run import train  # noqa: E402

pytestmark = [pytest.mark.torch]
TINY = ["--arch", "tinycnn", "--weights", "none", "--img-size", "32", "--no-progress", "--workers", "0"]


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Smooth pictures of several sizes, plus one of every file kind per class (PNG, grayscale, CMYK...)."""
    from train.synthetic import make_synthetic

    root = make_synthetic(tmp_path_factory.mktemp("photos"), per_class=6, seed=0, size=(96, 72))
    for k, folder in enumerate(sorted((root / "raw-img").iterdir())):
        for name, raw in kinds((70 + k, 50 + k), seed=k).items():
            (folder / f"{name}.img").write_bytes(raw)
    return root


def build(root: Path, out: Path, loader: str, *extra: str):
    cfg = parse_config(["--data", str(root), "--out", str(out), "--loader", loader, *TINY, *extra])
    data = prepare_data(cfg, Dist())
    spec = preprocess_spec(cfg)
    return cfg, data, spec, make_loaders(cfg, data, spec, Dist(), Precision(torch.device("cpu")))


@pytest.mark.parametrize("loader", ["cpu", "gpu"])
def test_validation_and_test_tensors_are_the_services(photos: Path, tmp_path: Path, loader: str) -> None:
    _, data, spec, loaders = build(photos, tmp_path, loader)
    assert loaders.kind == loader and isinstance(loaders.train, DeviceBatches) == (loader == "gpu")
    for split, dl in (("val", loaders.val), ("test", loaders.test)):
        got = torch.cat([x for x, _ in dl])
        files = [(data.root / e.file).read_bytes() for e in data.split_entries(split)]
        want = np.stack([image_tensor(raw, "RGB", spec, DecodeOptions(max_pixels=MAX_PIXELS)) for raw in files])
        assert torch.equal(got, torch.from_numpy(want)), split


def test_both_train_paths_give_the_same_images_in_the_same_order(photos: Path, tmp_path: Path) -> None:
    """Same shuffle, same draw per sample: the batches differ only by resampling (a few 8-bit levels)."""
    batches = {}
    for loader in ("cpu", "gpu"):
        _, _, _, loaders = build(photos, tmp_path / loader, loader, "--batch-size", "16")
        loaders.start_epoch(0, 1, 0)
        batches[loader] = [(x.clone(), y.clone()) for x, y in loaders.train]
    for (xc, yc), (xg, yg) in zip(batches["cpu"], batches["gpu"], strict=True):
        assert torch.equal(yc, yg)
        assert ((xc - xg).abs().mean(dim=(1, 2, 3)) < 0.05).all()  # 0.05 std ~ 3 levels; another draw gives ~0.5
    shifted = (batches["cpu"][0][0][1:] - batches["gpu"][0][0][:-1]).abs().mean()
    assert shifted > 0.3  # the comparison can tell samples apart


def test_default_workers_follow_the_cpus_this_process_may_use() -> None:
    assert default_workers(Dist()) == max(0, cpu_quota() - 1)
    assert default_workers(Dist(local_world_size=2)) == max(0, cpu_quota() // 2 - 1)


def test_auto_picks_the_gpu_path_on_cuda_for_image_folders() -> None:
    folder = SplitData(Path("."), [], [], [], [], "")
    fashion = SplitData(Path("."), [], [], [], [], "", kind="fashion-mnist", color="L")
    cuda, cpu = torch.device("cuda", 0), torch.device("cpu")
    assert pick_loader("auto", cuda, folder) == "gpu" and pick_loader("auto", cpu, folder) == "cpu"
    assert pick_loader("auto", cuda, fashion) == "cpu" and pick_loader("gpu", cpu, folder) == "gpu"
    with pytest.raises(ValueError, match="--loader gpu decodes image files"):
        pick_loader("gpu", cuda, fashion)


def test_loader_gpu_on_fashion_mnist_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_fashion_mnist(tmp_path / "fm", n_train=200, n_test=50)
    with pytest.raises(SystemExit) as exit_info:
        main(["--data", f"fashion-mnist:{root}", "--out", str(tmp_path / "run"), "--loader", "gpu", *TINY])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "error: --loader gpu decodes image files" in err[0]


def test_a_gpu_path_run_reports_how_each_training_image_was_decoded(
    photos: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="train")
    report = train(
        parse_config(["--data", str(photos), "--out", str(tmp_path), "--loader", "gpu", "--epochs", "2", *TINY])
    )
    train_files = [
        line.split(",")[0] for line in (tmp_path / "split.csv").read_text().splitlines()[1:] if ",train," in line
    ]
    routes = [device_route((photos / "raw-img" / f).read_bytes())[0] for f in train_files]
    expected = {r: 2 * routes.count(r) for r in ROUTES}  # two epochs
    assert report["loader"] == {"kind": "gpu", "workers": 0, "decodes": expected}
    assert expected["device"] > 0 and expected["device-rejected"] == 0 and len(set(routes)) == len(ROUTES) - 1
    assert any("training images decoded by the CPU rule" in r.getMessage() for r in caplog.records)
    assert report["test_images"] == 10 and report["epochs"][-1]["train_loss"] > 0
