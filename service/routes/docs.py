"""GET /docs and /redoc served by this server alone: no CDN, so they work offline and behind a strict CSP.

Swagger UI and ReDoc come from the ``fastapi-offline`` package's bundled
distribution files (MIT; swagger-ui-dist and redoc), mounted under
``/docs-assets``; nothing is copied into this repository. Every URL in the two
pages is relative, so they also work under a path prefix (``root_path``).
"""

from __future__ import annotations

import importlib.resources
from html import escape
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs-assets"
_BUNDLED = Path(str(importlib.resources.files("fastapi_offline") / "static"))
_INIT = (Path(__file__).resolve().parent.parent / "swagger-init.js").read_text(encoding="utf-8")

router = APIRouter(include_in_schema=False)


def _page(title: str, head: str, body: str) -> HTMLResponse:
    html = (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n"
        '<link rel="icon" type="image/png" href="docs-assets/favicon.png">\n'
        f"{head}</head>\n<body>\n{body}</body>\n</html>\n"
    )
    return HTMLResponse(html, headers={"Cache-Control": "no-cache"})


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI: try every endpoint from the browser."""
    return _page(
        f"{request.app.title} - API docs",
        '<link rel="stylesheet" href="docs-assets/swagger-ui.css">\n',
        '<div id="swagger-ui"></div>\n<script src="docs-assets/swagger-ui-bundle.js"></script>\n'
        '<script src="docs-assets/swagger-init.js"></script>\n',
    )


@router.get(f"{ASSETS}/swagger-init.js")
def swagger_init() -> Response:
    return Response(_INIT, media_type="text/javascript", headers={"Cache-Control": "no-cache"})


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    """ReDoc: the same OpenAPI description as a reference page."""
    return _page(
        f"{request.app.title} - API reference",
        "",
        '<redoc spec-url="openapi.json"></redoc>\n<script src="docs-assets/redoc.standalone.js"></script>\n',
    )


def install_docs(app: FastAPI) -> None:
    """The two pages, then the bundled files (the init script's route is matched before the mount)."""
    app.include_router(router)
    app.mount(ASSETS, StaticFiles(directory=_BUNDLED), name="docs-assets")
