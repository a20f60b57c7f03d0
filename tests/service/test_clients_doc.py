"""The examples in docs/clients.md really work: each runs against a live server (and a local image host)."""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from tests.service.conftest import make_settings, serve

DOC = Path(__file__).resolve().parents[2] / "docs" / "clients.md"
DOC_URL, DOC_HOST, DOC_MODEL = "http://127.0.0.1:8000", "127.0.0.1:8000", '"demo"'
DOC_IMAGES = "https://images.example.com"


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC.read_text(), flags=re.S)


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def live(rgb_model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """The service (tiny-rgb, URL input allowed for 127.0.0.1 only) and a local server holding photo.jpg."""
    work = tmp_path_factory.mktemp("clients")
    Image.new("RGB", (320, 240), (210, 40, 40)).save(work / "photo.jpg", quality=90)
    files = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(work)))
    threading.Thread(target=files.serve_forever, daemon=True).start()
    settings = make_settings(
        rgb_model_path, url_allowed_hosts="127.0.0.1", url_allowed_networks="127.0.0.1/32", url_allow_http=True
    )
    try:
        with serve(settings) as url:
            yield {"url": url, "work": work, "images": f"http://127.0.0.1:{files.server_address[1]}"}
    finally:
        files.shutdown()
        files.server_close()


def localize(code: str, live: dict[str, object]) -> str:
    url = str(live["url"])
    code = code.replace(DOC_URL, url).replace(DOC_HOST, url.removeprefix("http://"))
    code = code.replace("/v2/models/demo/", "/v2/models/tiny-rgb/").replace(DOC_MODEL, '"tiny-rgb"')
    return code.replace(DOC_IMAGES, str(live["images"]))


def run_python(code: str, live: dict[str, object], python: str = sys.executable) -> str:
    out = subprocess.run([python, "-c", code], cwd=live["work"], capture_output=True, text=True, timeout=60)  # type: ignore[call-overload]
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_doc_has_the_examples_the_tests_run() -> None:
    assert len(blocks("python")) == 3 and len(blocks("bash")) == 2


def test_tritonclient_encoded_images(live: dict[str, object]) -> None:
    pytest.importorskip("tritonclient.http")
    out = run_python(localize(blocks("python")[0], live), live)
    assert out.startswith("[b'") and ":0:red'" in out


def test_tritonclient_tensors(live: dict[str, object]) -> None:
    pytest.importorskip("tritonclient.http")
    assert run_python(localize(blocks("python")[1], live), live).strip() == "(8, 3)"


def kserve_python() -> str | None:
    """An interpreter with the KServe SDK: KSERVE_PYTHON, or this one if it has kserve."""
    if os.environ.get("KSERVE_PYTHON"):
        return os.environ["KSERVE_PYTHON"]
    return sys.executable if importlib.util.find_spec("kserve") else None


def test_kserve_sdk(live: dict[str, object]) -> None:
    python = kserve_python()
    if python is None:
        pytest.skip("the KServe SDK is not installed here (see docs/clients.md); set KSERVE_PYTHON to run it")
    out = run_python(localize(blocks("python")[2], live), live, python)
    probs = [float(x) for x in out.strip().strip("[]").split()]
    assert len(probs) == 3 and probs[0] == max(probs) and abs(sum(probs) - 1) < 1e-4


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_examples(live: dict[str, object]) -> None:
    v2, by_url = blocks("bash")
    lines = [v2.strip()] + [ln for ln in by_url.splitlines() if ln.startswith("curl ")]
    assert len(lines) == 3
    for line in lines:
        out = subprocess.run(
            ["bash", "-c", localize(line, live) + " --fail-with-body"],
            cwd=live["work"],  # type: ignore[arg-type]
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert out.returncode == 0, out.stdout + out.stderr
        assert ':0:red"' in out.stdout or '"label":"red"' in out.stdout, out.stdout
