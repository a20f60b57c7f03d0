"""/docs and /redoc render in a real Chromium that cannot reach the internet: every asset is same-origin."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.service.cdp import CHROMIUM, OFFLINE, Browser, Page
from tests.service.conftest import make_settings, serve

# Every URL the page fetched, as the browser's own resource timing saw them.
RESOURCES = "[location.href, ...performance.getEntriesByType('resource').map(e => e.name)]"
# ReDoc's sidebar footer always tries its vendor's logo (no option turns it off); offline, or under
# a CSP with img-src 'self', the image fails and ReDoc removes it. Nothing else may leave the server.
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_docs_pages_reference_only_this_server(client: TestClient, path: str) -> None:
    html = client.get(path).text
    assert "cdn." not in html and "googleapis" not in html and "://" not in html
    for asset in ("docs-assets/favicon.png", "openapi.json" if path == "/redoc" else "docs-assets/swagger-init.js"):
        assert asset in html


def test_bundled_assets_are_served(client: TestClient) -> None:
    for name, kind in [
        ("swagger-ui-bundle.js", "javascript"),
        ("swagger-ui.css", "text/css"),
        ("redoc.standalone.js", "javascript"),
        ("swagger-init.js", "javascript"),
    ]:
        r = client.get(f"/docs-assets/{name}")
        assert r.status_code == 200 and kind in r.headers["content-type"] and len(r.content) > 300, name
    assert client.get("/docs-assets/../settings.py").status_code == 404


@pytest.fixture(scope="module")
def offline_browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed: apt-get install -y chromium (needed for the browser test)")
    b = Browser(extra_flags=OFFLINE)
    try:
        yield b
    finally:
        b.close()


@pytest.mark.browser
def test_swagger_ui_renders_offline(offline_browser: Browser, rgb_model_path: Path, tmp_path: Path) -> None:
    with serve(make_settings(rgb_model_path)) as url:
        page = Page(offline_browser, url + "/docs")
        paths = page.wait_for(
            "[...document.querySelectorAll('.opblock-summary-path')].map(e => e.textContent.trim()).join(' ')", 30
        )
        fetched = page.evaluate(RESOURCES)
        page.screenshot(tmp_path / "docs.png")
    assert "/predict" in paths and "/predict/batch" in paths and "/v1/model" in paths
    assert fetched and all(u.startswith(url) for u in fetched), fetched
    assert any(u.endswith("/openapi.json") for u in fetched)


@pytest.mark.browser
def test_redoc_renders_offline(offline_browser: Browser, rgb_model_path: Path) -> None:
    with serve(make_settings(rgb_model_path)) as url:
        page = Page(offline_browser, url + "/redoc")
        text = page.wait_for(
            "document.querySelector('.api-content') && document.body.innerText.includes('Classify one image')"
            " && document.body.innerText",
            30,
        )
        fetched = page.evaluate(RESOURCES)
        logo_hidden = page.wait_for("!document.querySelector('img[alt=\"redocly logo\"]')", 10)
    assert "Image classifier" in text and "/v1/model" in text
    assert fetched and all(u.startswith(url) for u in fetched if u != REDOC_LOGO), fetched
    assert logo_hidden
