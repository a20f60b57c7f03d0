"""Refusals of the training and export commands: what the user gave is unusable, and what to do instead.

They subclass ``ValueError`` as well, so every caller that already treats bad
arguments as ``ValueError`` keeps working; the CLIs print them on one line.
"""

from __future__ import annotations

from core.errors import ClassifierError


class CheckpointError(ClassifierError, ValueError):
    """A file that is not a checkpoint written by ``python -m train``, or whose weights do not fit its arch."""

    code = "invalid_checkpoint"


class WeightsError(ClassifierError, ValueError):
    """``--weights``: the ImageNet download failed, or a local file does not fit the architecture."""

    code = "unusable_weights"


class DatasetError(ClassifierError, ValueError):
    """A dataset too small or too odd for the accuracy to mean anything."""

    code = "unusable_dataset"
