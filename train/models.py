"""Model zoo: the reference VGG16 head, any torchvision classifier by name, and a tiny CNN.

``build_model`` takes only what a checkpoint stores, so export rebuilds the
network from the checkpoint alone.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any
from urllib.error import URLError

import torch
from torch import nn

from train.errors import WeightsError

WEIGHT_CHOICES = "imagenet, none, or a path to a state_dict file"


def tinycnn(num_classes: int, in_channels: int = 3) -> nn.Module:
    """A few-thousand-parameter CNN for demos and tests: trains in seconds on a CPU."""

    def block(i: int, o: int) -> list[nn.Module]:
        return [nn.Conv2d(i, o, 3, stride=2, padding=1), nn.BatchNorm2d(o), nn.ReLU(inplace=True)]

    return nn.Sequential(
        *block(in_channels, 16),
        *block(16, 32),
        *block(32, 64),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(64, num_classes),
    )


def reference_vgg16_head(model: nn.Module, num_classes: int) -> nn.Module:
    """The reference project's head: GAP -> 512 -> 256 -> ReLU -> Dropout(0.2) -> classes."""
    model.avgpool = nn.AdaptiveAvgPool2d(1)
    model.classifier = nn.Sequential(
        nn.Flatten(), nn.Linear(512, 256), nn.ReLU(inplace=True), nn.Dropout(0.2), nn.Linear(256, num_classes)
    )
    return model


def _replace_head(model: nn.Module, num_classes: int) -> nn.Module:
    """Swap the last Linear layer of any torchvision classifier for one with ``num_classes`` outputs."""
    for name in ("fc", "classifier", "head", "heads"):
        parent = getattr(model, name, None)
        if isinstance(parent, nn.Linear):
            setattr(model, name, nn.Linear(parent.in_features, num_classes))
            return model
        if isinstance(parent, nn.Sequential):
            for idx in range(len(parent) - 1, -1, -1):
                layer = parent[idx]
                if isinstance(layer, nn.Linear):
                    parent[idx] = nn.Linear(layer.in_features, num_classes)
                    return model
    raise ValueError(f"do not know where the classifier head of {type(model).__name__} is")


def _adapt_first_conv(model: nn.Module, in_channels: int) -> nn.Module:
    """For grayscale inputs: sum the first conv's RGB filters into one channel (keeps pretrained features)."""
    if in_channels == 3:
        return model
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d) and module.in_channels == 3:
            new = nn.Conv2d(
                in_channels,
                module.out_channels,
                module.kernel_size,  # type: ignore[arg-type]  # a 2-tuple on a Conv2d
                module.stride,  # type: ignore[arg-type]
                module.padding,  # type: ignore[arg-type]
                module.dilation,  # type: ignore[arg-type]
                module.groups,
                module.bias is not None,
            )
            with torch.no_grad():
                new.weight.copy_(module.weight.sum(dim=1, keepdim=True).repeat(1, in_channels, 1, 1) / in_channels)
                if module.bias is not None and new.bias is not None:
                    new.bias.copy_(module.bias)
            new.requires_grad_(module.weight.requires_grad)  # frozen features stay frozen
            parent_name, _, attr = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, attr, new)
            return model
    raise ValueError("no 3-channel input convolution found to adapt")


def torchvision_archs() -> list[str]:
    """Names ``--arch`` accepts besides ``tinycnn``: torchvision's image classification models."""
    from torchvision import models

    return models.list_models(module=models)


def check_arch_and_weights(arch: str, weights: str | None) -> None:
    """Refuse a bad ``--arch`` or ``--weights`` before any data is read or generated."""
    if arch != "tinycnn" and arch not in torchvision_archs():
        raise ValueError(
            f"--arch {arch}: not a torchvision classification model "
            f"(try vgg16, resnet50, efficientnet_b0, convnext_tiny, mobilenet_v3_small, or tinycnn)"
        )
    if weights in (None, "none", "imagenet"):
        return
    path = Path(weights)
    if not path.is_file():
        what = "a folder" if path.is_dir() else "no such file"
        raise WeightsError(f"--weights {weights}: {what}; use {WEIGHT_CHOICES}")


def load_weights(model: nn.Module, state: Any, what: str) -> None:
    """``load_state_dict`` with one line instead of PyTorch's list of every mismatched key."""
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise WeightsError(f"{what} the file holds a {type(state).__name__}, not a state_dict")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        expected = set(model.state_dict())
        missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
        example = (missing or unexpected or ["shapes differ"])[0]
        raise WeightsError(
            f"{what} the weights do not fit {type(model).__name__} ({len(missing)} missing, "
            f"{len(unexpected)} unexpected keys, e.g. {example}); they were saved from another architecture"
        ) from exc


def _imagenet(arch: str) -> nn.Module:
    """torchvision's pretrained model, downloaded once into TORCH_HOME; offline, say how to do without."""
    from torchvision import models

    weights = models.get_model_weights(arch).DEFAULT
    try:
        return models.get_model(arch, weights=weights)
    except (URLError, OSError, RuntimeError) as exc:
        cache = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
        reason = getattr(exc, "reason", None) or exc
        raise WeightsError(
            f"--weights imagenet: could not get {arch}'s ImageNet weights ({reason}); offline, copy "
            f"{weights.url} to {cache}, or pass --weights PATH (a state_dict file) or --weights none"
        ) from exc


def _torchvision_model(arch: str, weights: str | None) -> nn.Module:
    from torchvision import models

    check_arch_and_weights(arch, weights)
    if weights == "imagenet":
        return _imagenet(arch)
    model = models.get_model(arch, weights=None)
    if weights not in (None, "none"):
        try:
            state = torch.load(Path(weights), map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError, KeyError, ValueError) as exc:
            raise WeightsError(f"--weights {weights}: not a PyTorch state_dict file ({WEIGHT_CHOICES})") from exc
        load_weights(model, state, f"--weights {weights}:")
    return model


def build_model(
    arch: str, num_classes: int, in_channels: int = 3, weights: str | None = None, freeze_features: bool = False
) -> nn.Module:
    """Build ``arch`` with a ``num_classes`` head; ``weights`` is ``imagenet``, ``none`` or a file path."""
    if arch == "tinycnn":
        return tinycnn(num_classes, in_channels)
    model = _torchvision_model(arch, weights)
    if freeze_features:
        for p in model.parameters():
            p.requires_grad_(False)
    model = reference_vgg16_head(model, num_classes) if arch == "vgg16" else _replace_head(model, num_classes)
    return _adapt_first_conv(model, in_channels)
