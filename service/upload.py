"""Request bodies -> image bytes, whatever form the client chose, never past the size limit.

The limit is enforced while the body streams in: a declared ``Content-Length``
over the limit is refused before a byte is read, and the streamed bytes are
counted so a chunked or lying client is cut off as soon as it passes the limit.
Multipart bodies are parsed from that same counted stream.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect

from core.errors import ClassifierError
from service.errors import ApiError
from service.fetch import ImageURL


@dataclass(frozen=True)
class Upload:
    """One image of a request, with the name the client gave it (a batch answer echoes it)."""

    data: bytes | ClassifierError | ImageURL  # a bad base64 item carries its own error; a URL is fetched later
    field: str  # the multipart field name, or ``images[i]`` for JSON
    filename: str | None = None


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "payload_too_large", f"the request body is over the {limit:,}-byte limit (MAX_UPLOAD_BYTES)")


def check_declared_length(request: Request, limit: int) -> None:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)


async def limited_stream(request: Request, limit: int) -> AsyncGenerator[bytes, None]:
    """``request.stream()`` that raises 413 the moment more than ``limit`` bytes arrived."""
    check_declared_length(request, limit)
    seen = 0
    try:
        async for chunk in request.stream():
            seen += len(chunk)
            if seen > limit:
                raise _too_large(limit)
            yield chunk
    except ClientDisconnect as exc:  # nobody will read the answer; keep it out of the 5xx counts
        raise ApiError(400, "client_disconnected", "the client went away before the body was complete") from exc


async def read_limited(request: Request, limit: int) -> bytes:
    body = bytearray()
    async for chunk in limited_stream(request, limit):
        body += chunk
    return bytes(body)


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def read_files(request: Request, limit: int, max_files: int, too_many: ApiError) -> list[Upload]:
    """Every file part of a multipart body, in order (any field names), with its field and file name."""
    parser = MultiPartParser(request.headers, limited_stream(request, limit), max_files=max_files, max_fields=100)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        if exc.message.startswith("Too many files"):
            raise too_many from exc
        raise ApiError(400, "bad_multipart", f"the multipart body is malformed: {exc.message}") from exc
    files = [(k, v) for k, v in form.multi_items() if isinstance(v, UploadFile)]
    try:
        return [Upload(await f.read(), field, f.filename) for field, f in files]
    finally:
        await form.close()


def decode_base64(value: Any, where: str) -> bytes:
    """Plain base64 (standard or URL-safe, padding optional) or a ``data:`` URI."""
    if not isinstance(value, str) or not value.strip():
        raise ApiError(422, "invalid_parameters", f"{where} must be a non-empty base64 string or data: URI")
    text = value.strip()
    if text.startswith("data:"):
        header, sep, text = text.partition(",")
        if not sep or ";base64" not in header:
            raise ApiError(400, "invalid_base64", f"{where}: a data: URI must be data:image/...;base64,...")
    text = "".join(text.split())
    text += "=" * (-len(text) % 4)
    try:
        altchars = b"-_" if ("-" in text or "_" in text) else None
        return base64.b64decode(text, altchars=altchars, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ApiError(400, "invalid_base64", f"{where} is not valid base64: {exc}") from exc


async def read_json(request: Request, limit: int) -> Any:
    try:
        return json.loads(await read_limited(request, limit))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {exc}") from exc


async def read_one_image(request: Request, limit: int) -> bytes | ImageURL:
    """The image of a /predict call: one multipart file, a JSON ``image`` or ``url``, or the raw body."""
    kind = media_type(request)
    if kind == "multipart/form-data":
        one = ApiError(400, "missing_file", "send exactly one file, e.g. -F 'file=@photo.jpg' (or use /predict/batch)")
        files = await read_files(request, limit, max_files=1, too_many=one)
        if len(files) != 1:
            raise one
        data = files[0].data
        if not isinstance(data, bytes):  # not reached: multipart parts are bytes
            raise ApiError(400, "bad_multipart", "the file part could not be read")
        return data
    if kind == "application/json":
        doc = await read_json(request, limit)
        if isinstance(doc, dict) and "url" in doc and "image" not in doc:
            return ImageURL(doc["url"])
        if not isinstance(doc, dict) or "image" not in doc:
            raise ApiError(
                422, "invalid_parameters", 'the JSON body must be {"image": "<base64 or data: URI>"} or {"url": "..."}'
            )
        return decode_base64(doc["image"], "image")
    return await read_limited(request, limit)


async def read_many_images(request: Request, limit: int, max_items: int) -> list[Upload]:
    """The images of a /predict/batch call; a bad base64 item becomes that item's error."""
    kind = media_type(request)
    if kind == "multipart/form-data":
        items = await read_files(request, limit, max_items, _too_many(max_items))
    elif kind == "application/json":
        doc = await read_json(request, limit)
        if not isinstance(doc, dict) or not isinstance(doc.get("images"), list):
            raise ApiError(422, "invalid_parameters", 'the JSON body must be {"images": ["<base64>", ...]}')
        if len(doc["images"]) > max_items:
            raise _too_many(max_items)
        items = [Upload(_try_base64(v, f"images[{i}]"), f"images[{i}]") for i, v in enumerate(doc["images"])]
    else:
        raise ApiError(
            415,
            "unsupported_media_type",
            'send multipart/form-data files (curl -F files=@a.jpg -F files=@b.jpg) or JSON {"images": [...]}',
        )
    if not items:
        raise ApiError(422, "invalid_parameters", "the batch has no images")
    return items


def _too_many(max_items: int) -> ApiError:
    return ApiError(422, "too_many_images", f"at most {max_items} images per batch (MAX_BATCH_ITEMS)")


def _try_base64(value: Any, where: str) -> bytes | ClassifierError | ImageURL:
    if isinstance(value, dict) and set(value) == {"url"}:
        return ImageURL(value["url"])
    try:
        return decode_base64(value, where)
    except ApiError as exc:
        return exc
