"""The README's "train on your own folder, on a CPU" recipe, executed command by command on a tiny tree.

The three commands are read from README.md, so the recipe cannot rot. Only paths are substituted,
and the train command gets overrides appended (argparse keeps the last value): no internet here
for the ImageNet download (`--weights none`), and one epoch at 64 px to stay within a test's time.
"""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytest.importorskip("torch")

from tests.train.helpers import jpeg_bytes, write_folder_dataset  # noqa: E402

pytestmark = [pytest.mark.torch, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
HEADING = "**Train on your own folder, on a CPU.**"
OVERRIDES = ["--weights", "none", "--epochs", "1", "--img-size", "64", "--workers", "0", "--no-progress"]


def recipe() -> list[str]:
    text = (ROOT / "README.md").read_text()
    after = text[text.index(HEADING) :]
    block = re.search(r"```bash\n(.*?)```", after, re.S)
    assert block, "the recipe's bash block is missing from README.md"
    return [line for line in block[1].splitlines() if line.strip()]


def test_the_recipe_is_three_commands() -> None:
    train, export, serve = recipe()
    assert " -m train " in train and "--device cpu" in train and " -m export " in export and "-m service" in serve


def test_the_readme_recipe_runs(tmp_path: Path) -> None:
    data = write_folder_dataset(tmp_path / "data" / "my-photos", per_class=10)
    paths = {
        "data/my-photos": str(data),
        "runs/my-photos": str(tmp_path / "runs" / "my-photos"),
        "artifacts/my-photos": str(tmp_path / "artifacts" / "my-photos"),
        ".venv/bin/python": sys.executable,
    }

    def command(line: str) -> tuple[dict[str, str], list[str]]:
        for old, new in paths.items():
            line = line.replace(old, new)
        words = shlex.split(line)
        env = dict(w.split("=", 1) for w in words if re.match(r"^[A-Z_]+=", w))
        return env, [w for w in words if not re.match(r"^[A-Z_]+=", w)]

    train, export, serve = (command(line) for line in recipe())
    for env, argv in (train, export):
        extra = OVERRIDES if "train" in argv else []
        proc = subprocess.run(
            [*argv, *extra], cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=600
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "artifacts" / "my-photos" / "model.onnx").is_file()

    env, argv = serve
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env |= {"HOST": "127.0.0.1", "PORT": str(port)}
    proc = subprocess.Popen(
        argv, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            pytest.fail("the recipe's service did not become ready")
        r = httpx.post(f"http://127.0.0.1:{port}/predict", content=jpeg_bytes((220, 30, 30), seed=99), timeout=30)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert r.status_code == 200, r.text
    assert r.json()["label"] in {"red", "green", "blue"} and r.json()["model"]["precision"] == "fp32"
