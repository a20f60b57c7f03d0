"""The model file's sha256, written beside it by export and checked by the service at start.

A hash cannot live inside the file it hashes, so it travels in a sidecar
``model.onnx.sha256`` in the format ``sha256sum`` writes and checks
(``<hex>  model.onnx``): ``sha256sum -c model.onnx.sha256`` works too. A
weights file with flipped bits (a bad copy, a truncated download, a disk
error) is then refused at start instead of served.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from core.errors import ContractError

SUFFIX = ".sha256"
_HEX = re.compile(r"[0-9a-f]{64}")


class ChecksumMismatch(ContractError):
    """The model file is not the file export wrote."""

    code = "model_checksum_mismatch"


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def sidecar(path: Path) -> Path:
    return path.with_name(path.name + SUFFIX)


def write_sidecar(path: Path) -> Path:
    """Write ``<path>.sha256`` for ``path`` (as ``sha256sum`` does) and return it."""
    side = sidecar(path)
    side.write_text(f"{file_sha256(path)}  {path.name}\n")
    return side


def read_sidecar(path: Path) -> str | None:
    """The hex digest recorded beside ``path``; None when there is no sidecar."""
    side = sidecar(path)
    try:
        text = side.read_text().strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ChecksumMismatch(f"{side} cannot be read: {exc}") from exc
    digest = text.split()[0].lower() if text else ""
    if not _HEX.fullmatch(digest):
        raise ChecksumMismatch(f"{side} does not hold a sha256 (expected '<64 hex digits>  {path.name}')")
    return digest


def verify(path: Path, expected: str | None = None, digest: str | None = None) -> str | None:
    """Check ``path`` against ``expected`` (else its sidecar); return the digest checked, None if none is known.

    ``digest``: the file's sha256 when the caller already computed it (``LoadedModel.sha256``).
    """
    source = "MODEL_SHA256" if expected else str(sidecar(path))
    want = (expected or "").strip().lower() or read_sidecar(path)
    if want is None:
        return None
    if not _HEX.fullmatch(want):
        raise ChecksumMismatch(f"{source} is not a sha256 (64 hex digits): {want!r}")
    got = digest or file_sha256(path)
    if got != want:
        raise ChecksumMismatch(
            f"{path} does not match its sha256 from {source} (expected {want[:12]}..., got {got[:12]}...): "
            "the file is corrupt or not the one export wrote"
        )
    return got
