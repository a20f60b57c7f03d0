"""``python -m service``: --help lists every setting; an unusable model or setting is one line and exit 2.

Each case runs the real command in a subprocess, as a newcomer would.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from service.settings import Settings
from tests.service.badmodels import (
    write_described,
    write_label_mismatch,
    write_torch_like_checkpoint,
    write_without_metadata,
)

ROOT = Path(__file__).resolve().parents[2]


def service(*args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess:
    inherited = {k: v for k, v in os.environ.items() if k != "DEBUG"}
    full_env = {**inherited, "INTRA_OP_THREADS": "1", **env}
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_help_prints_every_setting_with_its_default_and_exits() -> None:
    out = service("--help")
    assert out.returncode == 0, out.stderr
    for name, field in Settings.model_fields.items():
        default = (
            "unset"
            if field.default is None
            else str(field.default).lower()
            if isinstance(field.default, bool)
            else str(field.default)
        )
        assert f"  {name.upper()}={default}\n" in out.stdout, name
    assert "--check" in out.stdout and "--debug" in out.stdout


def _bad_models(tmp: Path) -> dict[str, tuple[Path, str]]:
    """name -> (MODEL_PATH, what the one line must say)."""
    (tmp / "folder").mkdir()
    (tmp / "notes.txt").write_text("a model, surely\n")
    (tmp / "empty.onnx").write_bytes(b"")
    good = write_described(tmp / "good.onnx")
    (tmp / "cut.onnx").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    return {
        "missing": (tmp / "nope.onnx", "does not exist; run `make demo` or `python -m export` first"),
        "folder": (tmp / "folder", "is a folder"),
        "pt": (write_torch_like_checkpoint(tmp / "best.pt"), "a PyTorch checkpoint"),
        "text": (tmp / "notes.txt", "a text file"),
        "empty": (tmp / "empty.onnx", "an empty file"),
        "corrupt": (tmp / "cut.onnx", "INVALID_PROTOBUF"),
        "no_metadata": (write_without_metadata(tmp / "bare.onnx"), "has no 'image_classifier' metadata"),
        "labels_vs_output": (write_label_mismatch(tmp / "mismatch.onnx"), "lists 4 labels but the model outputs 3"),
        "labels_vs_symbolic_output": (
            write_label_mismatch(tmp / "symbolic.onnx", symbolic=True),
            "lists 4 labels but the model outputs 3",
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "folder",
        "pt",
        "text",
        "empty",
        "corrupt",
        "no_metadata",
        "labels_vs_output",
        "labels_vs_symbolic_output",
    ],
)
def test_unusable_model_is_one_line_and_exit_2(tmp_path: Path, case: str) -> None:
    path, expected = _bad_models(tmp_path)[case]
    out = service(MODEL_PATH=str(path))
    assert out.returncode == 2, out.stdout + out.stderr
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr, out.stderr
    assert out.stderr.startswith(f"python -m service: error: MODEL_PATH: {path}") and expected in out.stderr


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    path = tmp_path / "nope.onnx"
    for out in (service("--debug", MODEL_PATH=str(path)), service(MODEL_PATH=str(path), DEBUG="1")):
        assert out.returncode != 0 and "Traceback" in out.stderr and "does not exist" in out.stderr


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"PORT": "eighty"}, "invalid setting: PORT='eighty': Input should be a valid integer"),
        ({"MAX_PIXELS": "-1"}, "invalid setting: MAX_PIXELS='-1': Input should be greater than 0"),
    ],
)
def test_bad_setting_is_one_line(rgb_model_path: Path, env: dict[str, str], expected: str) -> None:
    out = service(MODEL_PATH=str(rgb_model_path), **env)
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert expected in out.stderr


def test_check_names_file_sha256_labels_precision_opset_threads(tmp_path: Path) -> None:
    path = write_described(tmp_path / "model.int8.onnx", precision="int8", opset=17)
    out = service("--check", MODEL_PATH=str(path))
    assert out.returncode == 0, out.stderr
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert (
        f"serving {path} (sha256 {sha}): 3 labels, precision int8, opset 17; "
        "1 inference instance(s) (1 onnxruntime threads)" in out.stdout
    )


def test_startup_log_line_of_the_running_service(tmp_path: Path) -> None:
    """The line an operator reads in the container log, from the real server."""
    path = write_described(tmp_path / "model.onnx", precision="fp32", opset=20)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path / "service.log"
    env = {**os.environ, "MODEL_PATH": str(path), "HOST": "127.0.0.1", "PORT": str(port), "INTRA_OP_THREADS": "1"}
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "service"], cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            pytest.fail("the service did not become ready: " + log.read_text())
        model = httpx.get(f"http://127.0.0.1:{port}/v1/model", timeout=5).json()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    text = log.read_text()
    assert re.search(
        rf"serving {re.escape(str(path))} \(sha256 [0-9a-f]{{64}}\): 3 labels, precision fp32, opset 20", text
    )
    assert model["sha256"] in text and model["precision"] == "fp32" and model["opset"] == 20
