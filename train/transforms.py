"""torchvision transforms built from the preprocessing that export writes into the model.

The eval transform here is torchvision's own; ``service.imaging`` reproduces it
without torch and export measures that the two agree.
"""

from __future__ import annotations

from torchvision import transforms as T

from service.contract import PreprocessSpec

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def eval_transform(spec: PreprocessSpec) -> T.Compose:
    return T.Compose([
        T.Resize(spec.resize_shorter, interpolation=T.InterpolationMode.BILINEAR),
        T.CenterCrop(spec.crop),
        T.ToTensor(),
        T.Normalize(spec.mean, spec.std),
    ])


def train_transform(spec: PreprocessSpec, rotation: float = 25.0, hflip: bool = True,
                    crop_scale: float = 0.08) -> T.Compose:
    """The reference recipe: RandomRotation(25), RandomResizedCrop, RandomHorizontalFlip."""
    steps = [T.RandomRotation(rotation)] if rotation else []
    steps.append(T.RandomResizedCrop(spec.crop, scale=(crop_scale, 1.0)))
    if hflip:
        steps.append(T.RandomHorizontalFlip())
    steps += [T.ToTensor(), T.Normalize(spec.mean, spec.std)]
    return T.Compose(steps)
