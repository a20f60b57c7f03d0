"""Request bodies -> image bytes, whatever form the client chose, never past the size limit.

The limit is enforced while the body streams in: a declared ``Content-Length``
over the limit is refused before a byte is read, and the streamed bytes are
counted so a chunked or lying client is cut off as soon as it passes the limit.
Multipart bodies are parsed from that same counted stream.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect

from core.errors import ClassifierError
from service.admission import current_ticket
from service.errors import ApiError
from service.fetch import ImageURL
from service.jsonbody import base64_bytes, decode_base64_bytes, parse_json_off_loop
from service.memory import BODY_COPIES


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
    """``request.stream()`` that raises 413 the moment more than ``limit`` bytes arrived.

    The body is charged to the request's memory account before a byte is read: its declared
    length, all at once (uploads charged piece by piece could each hold part of the budget and
    all wait for the rest); a chunked body without a length is charged as it arrives. A client
    declaring a large body and sending it slowly holds its share only until the body timeout.
    """
    check_declared_length(request, limit)
    ticket = current_ticket()
    account = None if ticket is None else ticket.account
    declared = request.headers.get("content-length", "")
    charged = int(declared) if declared.isdigit() else 0
    if account is not None and charged:
        await account.reserve_body(BODY_COPIES * charged)
    seen = 0
    try:
        async for chunk in request.stream():
            seen += len(chunk)
            if seen > limit:
                raise _too_large(limit)
            if account is not None and seen > charged:
                await account.reserve_body(BODY_COPIES * (seen - charged))
                charged = seen
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
    parser.spool_max_size = limit + 1  # files stay in memory (charged above), never on a full or read-only /tmp
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
    return decode_base64_bytes(base64_bytes(value, where), where)


async def read_json(request: Request, limit: int) -> Any:
    """The body as JSON, parsed on a worker thread; depth, numbers and size are bounded (``jsonbody``)."""
    body = await read_limited(request, limit)
    ticket = current_ticket()
    if ticket is not None and ticket.account is not None and not body.isascii():
        await ticket.account.reserve_body(3 * len(body), "this JSON body")  # its text may take 4 bytes a character
    return await parse_json_off_loop(body)


async def read_one_image(request: Request, limit: int) -> bytes | ImageURL:
    """The image of a /predict call: one multipart file, a JSON ``image`` or ``url``, or the raw body."""
    image = await _read_one_image(request, limit)
    _settle(len(image) if isinstance(image, bytes) else 0)
    return image


async def _read_one_image(request: Request, limit: int) -> bytes | ImageURL:
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
        ascii_ = base64_bytes(doc.pop("image"), "image")  # the str is let go here: one copy fewer
        return await run_in_threadpool(decode_base64_bytes, ascii_, "image")
    return await read_limited(request, limit)


async def read_many_images(request: Request, limit: int, max_items: int) -> list[Upload]:
    """The images of a /predict/batch call; a bad base64 item becomes that item's error."""
    items = await _read_many_images(request, limit, max_items)
    _settle(sum(len(item.data) for item in items if isinstance(item.data, bytes)))
    return items


def _settle(image_bytes: int) -> None:
    """The body is parsed: the request now holds its images only, not the body and its parsed copy."""
    ticket = current_ticket()
    if ticket is not None and ticket.account is not None:
        ticket.account.settle_body(image_bytes)


async def _read_many_images(request: Request, limit: int, max_items: int) -> list[Upload]:
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
        items = await run_in_threadpool(_all_base64, doc.pop("images"))
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


def _all_base64(values: list[Any]) -> list[Upload]:
    return [Upload(_try_base64(v, f"images[{i}]"), f"images[{i}]") for i, v in enumerate(values)]


def _try_base64(value: Any, where: str) -> bytes | ClassifierError | ImageURL:
    if isinstance(value, dict) and set(value) == {"url"}:
        return ImageURL(value["url"])
    try:
        return decode_base64(value, where)
    except ApiError as exc:
        return exc
