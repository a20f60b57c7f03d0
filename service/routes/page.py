"""GET /: one self-contained HTML page (no external assets, no build step) to try the model."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(tags=["page"])
_PAGE = (Path(__file__).resolve().parent.parent / "page.html").read_text(encoding="utf-8")


@router.get("/", response_class=HTMLResponse, include_in_schema=True)
def index() -> HTMLResponse:
    """A page where a person drops, pastes or picks an image and sees the top-k as bars."""
    return HTMLResponse(_PAGE, headers={"Cache-Control": "no-cache"})
