"""The client examples in docs/service.md really work: each code block runs against a live server."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from service.settings import Settings
from tests.service.conftest import make_settings, serve

DOC = Path(__file__).resolve().parents[2] / "docs" / "service.md"
DOC_URL = "http://127.0.0.1:8000"


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC.read_text(), flags=re.S)


@pytest.fixture(scope="module")
def live(rgb_model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    work = tmp_path_factory.mktemp("docs")
    Image.new("RGB", (320, 240), (210, 40, 40)).save(work / "photo.jpg", quality=90)
    with serve(make_settings(rgb_model_path)) as url:
        yield url, work


def test_docs_have_every_kind_of_example() -> None:
    assert len(blocks("bash")) == 1 and len(blocks("python")) == 2 and len(blocks("js")) == 1


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_examples(live: tuple[str, Path]) -> None:
    url, work = live
    lines = [ln for ln in blocks("bash")[0].splitlines() if ln.startswith("curl ")]
    assert len(lines) == 3
    for line in lines:
        out = subprocess.run(
            ["bash", "-c", line.replace(DOC_URL, url) + " -sS --fail-with-body"],
            cwd=work,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert out.returncode == 0, out.stdout + out.stderr
        assert '"label":"red"' in out.stdout


@pytest.mark.parametrize("index", [0, 1], ids=["httpx", "base64-stdlib"])
def test_python_examples(live: tuple[str, Path], index: int) -> None:
    url, work = live
    code = blocks("python")[index].replace(DOC_URL, url)
    out = subprocess.run([sys.executable, "-c", code], cwd=work, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("red ")


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed (the JS example needs Node 18+)")
def test_javascript_fetch_example(live: tuple[str, Path]) -> None:
    url, work = live
    code = blocks("js")[0].replace(DOC_URL, url)
    out = subprocess.run(["node", "-e", code], cwd=work, capture_output=True, text=True, timeout=30)
    if "fetch is not defined" in out.stderr or "FormData is not defined" in out.stderr:
        pytest.skip("this node is older than 18 (no global fetch)")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("red ")


def test_settings_table_lists_every_variable() -> None:
    text = DOC.read_text()
    missing = [name.upper() for name in Settings.model_fields if f"| `{name.upper()}` |" not in text]
    assert not missing, f"docs/service.md lacks settings {missing}"
