"""GET /: a self-contained page, driven in a real headless Chromium: pick a file, see the bars."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.service.cdp import CHROMIUM, Browser, Page
from tests.service.conftest import make_settings, serve


def test_page_is_self_contained(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert 'type="file"' in html and "/predict" in html and "paste" in html and "drop" in html
    # no external assets: every src/href is relative, and nothing is fetched from another origin
    assert not re.search(r'(src|href)\s*=\s*["\']?(https?:)?//', html)
    assert "@import" not in html and "<link" not in html


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed: apt-get install -y chromium (needed for the browser test)")
    b = Browser()
    try:
        yield b
    finally:
        b.close()


@pytest.mark.browser
def test_pick_a_photo_and_see_the_bars(browser: Browser, rgb_model_path: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    pixels = np.clip(rng.normal((200, 40, 40), 25, (300, 400, 3)), 0, 255).astype(np.uint8)
    photo = tmp_path / "photo.jpg"
    Image.fromarray(pixels).save(photo, quality=90)
    with serve(make_settings(rgb_model_path)) as url:
        page = Page(browser, url + "/")
        page.wait_for(
            "document.readyState === 'complete' && document.getElementById('model').textContent.includes('tiny-rgb')"
        )
        assert page.evaluate("document.getElementById('result').hidden") is True
        page.set_files("#file", [photo])
        label = page.wait_for(
            "!document.getElementById('result').hidden && document.getElementById('label').textContent"
        )
        bars = page.evaluate(
            "[...document.querySelectorAll('#bars .bar')].map(b => [b.querySelector('.name')"
            ".textContent, parseFloat(b.querySelector('.fill').style.width)])"
        )
        preview_loaded = page.wait_for("document.getElementById('preview').naturalWidth === 400")
        shot = page.screenshot(Path(os.environ.get("PAGE_SCREENSHOT", tmp_path / "page.png")))
    assert label.startswith("red (")
    assert [name for name, _ in bars][0] == "red" and len(bars) == 3
    assert bars[0][1] > 50 and bars[0][1] >= bars[1][1] >= bars[2][1]  # widths are the percentages
    assert preview_loaded and shot.stat().st_size > 5_000


@pytest.mark.browser
def test_page_shows_a_clear_error_for_a_non_image(browser: Browser, rgb_model_path: Path, tmp_path: Path) -> None:
    bogus = tmp_path / "notes.jpg"
    bogus.write_text("this is not a picture")
    with serve(make_settings(rgb_model_path)) as url:
        page = Page(browser, url + "/")
        page.wait_for("document.getElementById('model').textContent.includes('tiny-rgb')")
        page.set_files("#file", [bogus])
        status = page.wait_for(
            "document.getElementById('status').className === 'error' && document.getElementById('status').textContent"
        )
    assert "not an image format" in status


def _photo(path: Path, rgb: tuple[int, int, int], fmt: str = "JPEG") -> Path:
    rng = np.random.default_rng(5)
    pixels = np.clip(rng.normal(rgb, 20, (120, 160, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path, fmt)
    return path


RESULT_SHOWN = "!document.getElementById('result').hidden && document.getElementById('label').textContent"


@pytest.mark.browser
def test_an_error_clears_the_previous_result(browser: Browser, rgb_model_path: Path, tmp_path: Path) -> None:
    """A text file after a photo must not look as if it had been classified like the photo."""
    photo, bogus = _photo(tmp_path / "red.jpg", (210, 30, 30)), tmp_path / "notes.jpg"
    bogus.write_text("this is not a picture")
    with serve(make_settings(rgb_model_path)) as url:
        page = Page(browser, url + "/")
        page.wait_for("document.getElementById('model').textContent.includes('tiny-rgb')")
        page.set_files("#file", [photo])
        assert page.wait_for(RESULT_SHOWN).startswith("red (")
        page.set_files("#file", [bogus])
        page.wait_for("document.getElementById('status').className === 'error'")
        state = page.evaluate(
            "({hidden: document.getElementById('result').hidden, label: document.getElementById('label').textContent,"
            " bars: document.querySelectorAll('#bars .bar').length, src: document.getElementById('preview').src})"
        )
    assert state == {"hidden": True, "label": "", "bars": 0, "src": ""}


@pytest.mark.browser
@pytest.mark.parametrize("fmt", ["HEIF", "TIFF"])
def test_formats_the_browser_cannot_draw_get_the_server_preview(
    browser: Browser, rgb_model_path: Path, tmp_path: Path, fmt: str
) -> None:
    if fmt not in Image.SAVE:
        pytest.skip(f"Pillow cannot write {fmt} here")
    image = _photo(tmp_path / f"photo.{fmt.lower()}", (30, 30, 210), fmt)
    with serve(make_settings(rgb_model_path)) as url:
        page = Page(browser, url + "/")
        page.wait_for("document.getElementById('model').textContent.includes('tiny-rgb')")
        page.set_files("#file", [image])
        label = page.wait_for(RESULT_SHOWN)
        source = page.wait_for(
            "document.getElementById('preview').dataset.source === 'server'"
            " && document.getElementById('preview').complete && document.getElementById('preview').naturalWidth"
        )
        card_hidden = page.evaluate("document.getElementById('nopreview').hidden")
    assert label.startswith("blue (")
    assert source == 160 and card_hidden  # the server's JPEG, at the photo's own size (under 512 px)


@pytest.mark.browser
def test_no_preview_card_when_nobody_can_draw_it(browser: Browser, rgb_model_path: Path, tmp_path: Path) -> None:
    """The browser cannot draw TIFF and the preview request fails too -> a plain card, never a broken image.

    The server previews whatever it classified, so its refusal is simulated by replacing the
    page's fetch for /preview only; classification itself goes to the real server.
    """
    image = _photo(tmp_path / "photo.tiff", (30, 30, 210), "TIFF")
    with serve(make_settings(rgb_model_path)) as url:
        page = Page(browser, url + "/")
        page.wait_for("document.getElementById('model').textContent.includes('tiny-rgb')")
        # Simulate a server that answers /preview with an error, keeping everything else real.
        page.evaluate(
            "const real = window.fetch; window.fetch = (u, o) => String(u).startsWith('/preview')"
            " ? Promise.resolve(new Response('{}', {status: 500})) : real(u, o); true"
        )
        page.set_files("#file", [image])
        page.wait_for(RESULT_SHOWN)
        shown = page.wait_for("!document.getElementById('nopreview').hidden")
        preview_hidden = page.evaluate("document.getElementById('preview').hidden")
    assert shown and preview_hidden


@pytest.mark.browser
def test_footer_shows_this_servers_address(browser: Browser, rgb_model_path: Path) -> None:
    with serve(make_settings(rgb_model_path)) as url:
        page = Page(browser, url + "/")
        page.wait_for("document.readyState === 'complete'")
        curl = page.evaluate("document.getElementById('curl').textContent")
        formats = page.wait_for(
            "document.getElementById('formats').textContent.startsWith('JPEG, PNG, WEBP') && "
            "document.getElementById('formats').textContent"
        )
    assert curl == f"curl -F file=@photo.jpg {url}/predict"
    assert "TIFF" in formats and "MPEG" not in formats  # what /v1/model says decodes, not a fixed list


@pytest.mark.browser
def test_page_says_unknown_below_the_threshold(browser: Browser, rgb_model_path: Path, tmp_path: Path) -> None:
    photo = tmp_path / "pink.png"
    Image.new("RGB", (120, 90), (200, 120, 140)).save(photo)
    with serve(make_settings(rgb_model_path, min_confidence=0.99)) as url:
        page = Page(browser, url + "/")
        page.wait_for("document.getElementById('model').textContent.includes('tiny-rgb')")
        page.set_files("#file", [photo])
        label = page.wait_for(
            "!document.getElementById('result').hidden && document.getElementById('label').textContent"
        )
        bars = page.evaluate("document.querySelectorAll('#bars .bar').length")
        page.screenshot(Path(os.environ.get("PAGE_UNKNOWN_SCREENSHOT", tmp_path / "unknown.png")))
    assert label.startswith("Unknown: no label reaches 99%") and "best guess red" in label
    assert bars == 3  # the guesses are still shown
