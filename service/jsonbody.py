"""JSON bodies and the base64 strings inside them: bounded, off the event loop, few copies.

``json.loads`` on a client's body can fail in ways it does not call a
``JSONDecodeError``: 2,000 nested brackets raise ``RecursionError``, a
5,000-digit number ``ValueError``; and on a 20 MB body it runs for a second
or more. Here the nesting depth and the length of numbers are limited (a 400
that says so), parsing runs on a worker thread, and the bytes, the text and
the base64 are each let go as soon as the next form exists, so a base64 image
is never held in more than two forms at once.
"""

from __future__ import annotations

import binascii
import json
import re
from typing import Any

from starlette.concurrency import run_in_threadpool

from service.errors import ApiError

MAX_DEPTH = 32  # our bodies nest two deep; the v2 protocol's tensors a few more
MAX_NUMBER_CHARS = 64  # a float64 needs 24 characters; no client sends more
# Each JSON value becomes a Python object of 30-60 bytes: 20 MB of "[0,0,0,...]" would take
# 300 MB. Our bodies hold one or a few dozen strings; these caps keep the objects few.
MAX_CONTAINERS = 10_000
MAX_VALUES = 100_000

_OPENERS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.S)  # strings (skipped) and brackets
_BASE64_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_ \t\r\n"
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")
_NOT_BLANK_OR_PAD = bytes(c for c in range(256) if c not in b" \t\r\n=")
_CHUNK = 1 << 20  # a multiple of 4: whole base64 quanta


def _invalid(message: str) -> ApiError:
    return ApiError(400, "invalid_json", f"the body is not valid JSON: {message}")


def check_shape(
    text: str, max_depth: int = MAX_DEPTH, max_containers: int = MAX_CONTAINERS, max_values: int = MAX_VALUES
) -> None:
    """400 past ``max_depth`` nested arrays/objects, or too many values; brackets inside strings do not count."""
    openers = text.count("[") + text.count("{")
    if openers > max_containers or text.count(",") >= max_values:
        limits = f"{max_containers:,} arrays/objects or {max_values:,} values"
        raise ApiError(400, "json_too_complex", f"the JSON has more than {limits}")
    if openers <= max_depth:
        return  # cannot be deeper than the number of openers: the usual case costs a few scans in C
    depth = 0
    for match in _OPENERS.finditer(text.encode("utf-8", "surrogatepass")):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > max_depth:
                raise ApiError(400, "json_too_deep", f"the JSON nests deeper than {max_depth} levels")
        elif token in (b"]", b"}"):
            depth -= 1


def _number(kind: type[int] | type[float]) -> Any:
    def parse(digits: str) -> int | float:
        if len(digits) > MAX_NUMBER_CHARS:
            raise ApiError(400, "json_number_too_long", f"a JSON number has more than {MAX_NUMBER_CHARS} characters")
        return kind(digits)

    return parse


def _constant(name: str) -> Any:
    raise _invalid(f"{name} is not a JSON value")


def parse_json(body: bytes, max_containers: int = MAX_CONTAINERS, max_values: int = MAX_VALUES) -> Any:
    """Bytes -> JSON value, or a 400 saying what is wrong (never RecursionError or ValueError).

    The defaults suit bodies of a few strings; a protocol that carries tensors as JSON numbers
    (the v2 ``FP32`` input) passes its own, sized from its batch limit.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _invalid(f"it is not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    del body  # the caller still holds it; this frame no longer needs it
    check_shape(text, MAX_DEPTH, max_containers, max_values)
    try:
        return json.loads(text, parse_int=_number(int), parse_float=_number(float), parse_constant=_constant)
    except json.JSONDecodeError as exc:
        raise _invalid(str(exc)) from exc
    except RecursionError as exc:  # not reachable after check_shape; kept so it can never be a 500
        raise ApiError(400, "json_too_deep", "the JSON nests too deeply") from exc


async def parse_json_off_loop(body: bytes) -> Any:
    """``parse_json`` on a worker thread: a 20 MB body does not stall every other request."""
    return await run_in_threadpool(parse_json, body)


def base64_bytes(value: Any, where: str) -> bytes:
    """A JSON string holding base64 or a ``data:`` URI -> its ASCII bytes (the caller may then drop the str)."""
    if not isinstance(value, str) or not value.strip():
        raise ApiError(422, "invalid_parameters", f"{where} must be a non-empty base64 string or data: URI")
    try:
        return value.encode("ascii")
    except UnicodeEncodeError as exc:
        raise ApiError(400, "invalid_base64", f"{where} is not valid base64: non-ASCII character") from exc


def decode_base64_bytes(data: bytes, where: str) -> bytes:
    """Plain base64 (standard or URL-safe, padding optional, line breaks allowed) or a ``data:`` URI.

    Every check is a single pass in C (``translate``, ``find``, ``count``): on a 20 MB string
    the event loop's thread waits for the GIL a few milliseconds at a time, not a second.
    """
    start = 0
    if data[:5].lstrip().startswith(b"data:"):
        comma = data.find(b",", 0, 512)
        if comma < 0 or b";base64" not in data[:comma]:
            raise ApiError(400, "invalid_base64", f"{where}: a data: URI must be data:image/...;base64,...")
        start = comma + 1
    if data.translate(None, _BASE64_CHARS) != data[:start].translate(None, _BASE64_CHARS):
        raise ApiError(400, "invalid_base64", f"{where} is not valid base64: a character outside the alphabet")
    padding = data.find(b"=", start)
    if padding >= 0 and data[padding:].translate(None, b"= \t\r\n"):
        raise ApiError(400, "invalid_base64", f"{where} is not valid base64: data after the '=' padding")
    payload: bytes | memoryview = memoryview(data)[start:]  # no copy of a 27 MB string to skip its prefix
    if data.find(b"-", start) >= 0 or data.find(b"_", start) >= 0:
        if data.find(b"+", start) >= 0 or data.find(b"/", start) >= 0:
            raise ApiError(400, "invalid_base64", f"{where} mixes standard (+/) and URL-safe (-_) base64")
        payload = bytes(payload).translate(_FROM_URLSAFE)
    # The blanks and '=' of the payload, kept by deleting everything else (a few bytes; one pass in C)
    extra = data.translate(None, _NOT_BLANK_OR_PAD)
    extra = extra[len(data[:start].translate(None, _NOT_BLANK_OR_PAD)) :]
    pads = extra.count(b"=")
    blanks = len(extra) - pads
    chars = len(data) - start - len(extra)
    if chars % 4 == 1:
        raise ApiError(400, "invalid_base64", f"{where} is not valid base64: truncated (length {chars} mod 4 = 1)")
    if chars % 4 and padding < 0:
        payload = bytes(payload) + b"=" * (-chars % 4)  # unpadded (URL-safe encoders often are)
    try:
        return _a2b(payload, chunked=blanks == 0)
    except binascii.Error as exc:
        raise ApiError(400, "invalid_base64", f"{where} is not valid base64: {exc}") from exc


def _a2b(payload: bytes | memoryview, chunked: bool) -> bytes:
    """``a2b_base64`` in 1 MiB pieces when there are no line breaks: each holds the GIL ~5 ms, not ~200."""
    if not chunked or len(payload) <= _CHUNK:
        return binascii.a2b_base64(payload)
    return b"".join(binascii.a2b_base64(payload[i : i + _CHUNK]) for i in range(0, len(payload), _CHUNK))
