"""Domain errors shared by every stage: what went wrong, never how to answer it over HTTP.

Each error carries a stable machine-readable ``code``; the service maps codes to
HTTP statuses in one place (``service/errors.py``), training counts rejected
files, and the CLIs print the message on one line.
"""

from __future__ import annotations


class ClassifierError(Exception):
    """Base of every refusal this project raises on purpose; ``message`` says what to fix."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ImageRejected(ClassifierError):
    """Input that cannot become a model input."""

    code = "bad_image"


class NotAnImage(ImageRejected):
    """The bytes are not an image format the decoder reads."""

    code = "unsupported_media_type"


class UndecodableImage(ImageRejected):
    """A known format whose data is empty, truncated or corrupt."""

    code = "undecodable_image"


class ImageTooLarge(ImageRejected):
    """More pixels than the configured limit, read from the header before decoding."""

    code = "image_too_large"


class ContractError(ClassifierError, ValueError):
    """A model file without a usable ``image_classifier`` contract."""

    code = "invalid_model"


class ModelFileError(ClassifierError):
    """A model path that is missing, is a folder, or is not an ONNX file onnxruntime can open."""

    code = "invalid_model_file"
