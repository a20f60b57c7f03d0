"""--arch/--weights: local weights files, frozen features, grayscale inputs, the reference VGG16 head."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from torchvision import models  # noqa: E402

from train.models import build_model  # noqa: E402

pytestmark = [pytest.mark.torch]


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A 'pretrained' mobilenet_v3_small state dict written by the test (1000-class head, like ImageNet's)."""
    torch.manual_seed(123)
    state = models.mobilenet_v3_small(weights=None).state_dict()
    path = tmp_path_factory.mktemp("w") / "mnv3.pth"
    torch.save(state, path)
    return path, state


def test_local_weights_are_loaded_and_features_frozen(weights_file: tuple[Path, dict]) -> None:
    path, state = weights_file
    model = build_model("mobilenet_v3_small", 4, 3, str(path), freeze_features=True)
    torch.testing.assert_close(model.features[3].block[0][0].weight, state["features.3.block.0.0.weight"])
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"classifier.3.weight", "classifier.3.bias"}  # only the new 4-class layer
    assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 4)


def test_finetune_trains_everything(weights_file: tuple[Path, dict]) -> None:
    model = build_model("mobilenet_v3_small", 4, 3, str(weights_file[0]), freeze_features=False)
    assert all(p.requires_grad for p in model.parameters())


def test_grayscale_torchvision_model_sums_the_pretrained_rgb_filters(weights_file: tuple[Path, dict]) -> None:
    path, state = weights_file
    model = build_model("mobilenet_v3_small", 10, 1, str(path), freeze_features=True)
    first = model.features[0][0]
    assert first.in_channels == 1 and not first.weight.requires_grad
    torch.testing.assert_close(first.weight, state["features.0.0.weight"].sum(dim=1, keepdim=True))
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_unknown_arch_is_refused() -> None:
    with pytest.raises(ValueError, match="not a torchvision classification model"):
        build_model("fasterrcnn_resnet50_fpn", 10)


def test_vgg16_gets_the_reference_head_and_frozen_features() -> None:
    model = build_model("vgg16", 10, 3, "none", freeze_features=True)
    assert isinstance(model.avgpool, torch.nn.AdaptiveAvgPool2d)
    assert [type(m).__name__ for m in model.classifier] == ["Flatten", "Linear", "ReLU", "Dropout", "Linear"]
    assert sum(p.numel() for p in model.parameters()) == 14_848_586  # about 14.85 M, as the reference
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == 512 * 256 + 256 + 256 * 10 + 10
