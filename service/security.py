"""Security headers on every answer, and a strict Content-Security-Policy on the HTML pages.

JSON answers get ``nosniff``, no framing and ``default-src 'none'`` (nothing
to load, nothing to run). HTML answers (the page at ``/``, ``/docs``,
``/redoc``) get a policy built from the page itself: scripts and styles from
this origin, plus exactly the inline ``<script>`` and ``<style>`` blocks the
page contains, allowed by their sha256, so an injected script would not run.
Origins a page names in its own ``<script src>`` or ``<link href>`` are
allowed too (FastAPI's stock docs pages load from a CDN; served from this
origin, as they should be, the policy is 'self' alone). ReDoc writes its
styles at run time, so ``/redoc`` alone also allows inline styles.
"""

from __future__ import annotations

import base64
import hashlib
import re
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

COMMON = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]
API_POLICY = "default-src 'none'; frame-ancestors 'none'"
_INLINE = re.compile(rb"<(script|style)(\s[^>]*)?>(.*?)</\1\s*>", re.S | re.I)
_TAGS = re.compile(rb"<(script|link)\s([^>]*)>", re.I)
_URL = re.compile(rb"(?:src|href)\s*=\s*[\"']([^\"']+)[\"']", re.I)
_INLINE_STYLE_PAGES = ("/redoc",)


def _sha256(block: bytes) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(block).digest()).decode() + "'"


def page_policy(html: bytes, path: str = "/") -> str:
    """The CSP for one HTML page: 'self', its own inline blocks by hash, the origins it names itself."""
    scripts, styles, images = ["'self'"], ["'self'"], ["'self'", "data:", "blob:"]
    for tag, attrs, body in _INLINE.findall(html):
        if tag.lower() == b"script" and b"src=" not in (attrs or b""):
            scripts.append(_sha256(body))
        elif tag.lower() == b"style":
            styles.append(_sha256(body))
    for tag, attrs in _TAGS.findall(html):
        url = _URL.search(attrs)
        origin = urlsplit(url.group(1).decode("latin-1")) if url else None
        if origin is None or origin.scheme not in ("http", "https") or not origin.netloc:
            continue
        target = scripts if tag.lower() == b"script" else styles if b"stylesheet" in attrs.lower() else images
        target.append(f"{origin.scheme}://{origin.netloc}")
    if path in _INLINE_STYLE_PAGES:
        styles = [s for s in styles if not s.startswith("'sha256-")] + ["'unsafe-inline'"]
    return "; ".join(
        [
            "default-src 'none'",
            "script-src " + " ".join(dict.fromkeys(scripts)),
            "style-src " + " ".join(dict.fromkeys(styles)),
            "img-src " + " ".join(dict.fromkeys(images)),
            "font-src 'self' data:",
            "connect-src 'self'",
            "worker-src 'self' blob:",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


class SecurityHeadersMiddleware:
    """Adds the headers above; HTML bodies are held (they are small) to hash their inline blocks."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def send_with_headers(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"server"]
                message = {**message, "headers": headers + COMMON}
                if not _is_html(headers):
                    message["headers"].append((b"content-security-policy", API_POLICY.encode()))
                    await send(message)
                    return
                start = message  # wait for the body to build the policy
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            html = b"".join(chunks)
            policy = page_policy(html, scope.get("path", "/")).encode()
            await send({**start, "headers": [*start["headers"], (b"content-security-policy", policy)]})
            await send({"type": "http.response.body", "body": html})

        await self.app(scope, receive, send_with_headers)


def _is_html(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(k.lower() == b"content-type" and v.lower().startswith(b"text/html") for k, v in headers)
