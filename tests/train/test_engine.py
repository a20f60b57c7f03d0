"""The AMP + channels_last path (used on CUDA) runs through the same loop; here exercised on a CPU."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from train.distributed import Dist  # noqa: E402
from train.engine import Precision, evaluate, pick_precision, train_one_epoch  # noqa: E402
from train.models import tinycnn  # noqa: E402

pytestmark = [pytest.mark.torch]


def _loader() -> DataLoader:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(24, 3, 16, 16, generator=g), torch.arange(24) % 3
    return DataLoader(TensorDataset(x, y), batch_size=8)


def test_cpu_gets_plain_fp32() -> None:
    assert pick_precision(torch.device("cpu"), "auto", True) == Precision(torch.device("cpu"))


@pytest.mark.parametrize("dtype,scaler", [(torch.bfloat16, False), (torch.float16, True)])
def test_autocast_channels_last_and_grad_scaler_path(dtype: torch.dtype, scaler: bool) -> None:
    torch.manual_seed(0)
    model = tinycnn(3).to(memory_format=torch.channels_last)
    prec = Precision(torch.device("cpu"), dtype, channels_last=True)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    grad_scaler = torch.amp.GradScaler("cpu") if scaler else None
    before = [p.detach().clone() for p in model.parameters()]
    stats = train_one_epoch(model, _loader(), opt, prec, Dist(), grad_scaler, show_progress=False)
    assert stats.n == 24 and torch.isfinite(torch.tensor(stats.loss))
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    ev, confusion = evaluate(model, _loader(), prec, Dist(), 3, show_progress=False)
    assert ev.n == 24 and int(confusion.sum()) == 24 and confusion.shape == (3, 3)
