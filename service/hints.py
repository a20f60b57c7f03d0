"""Refusals that recognise a common client mistake and say what to type instead."""

from __future__ import annotations

from core.errors import ImageRejected, NotAnImage, UndecodableImage
from service.errors import ApiError

FORM = "application/x-www-form-urlencoded"
CURL_D = (
    "the image arrived as a form field with its line breaks removed, which is what `curl -d @photo.jpg` sends "
    "(it corrupts binary files): use `curl --data-binary @photo.jpg -H 'Content-Type: application/octet-stream'` "
    "or `curl -F file=@photo.jpg`"
)


def looks_like_curl_d(content_type: str, body: bytes) -> bool:
    """curl's ``-d @file`` posts the file as ``application/x-www-form-urlencoded`` minus every CR and LF."""
    return content_type == FORM and b"\n" not in body and b"\r" not in body


def explain_rejection(content_type: str, body: bytes, exc: ImageRejected) -> ImageRejected | ApiError:
    """The refusal to send for ``body``: a 415 naming ``--data-binary`` when it looks mangled by ``curl -d``."""
    if isinstance(exc, NotAnImage | UndecodableImage) and looks_like_curl_d(content_type, body):
        return ApiError(415, "unsupported_media_type", CURL_D)
    return exc
