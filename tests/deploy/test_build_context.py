"""The build context as a real engine sends it: exactly what .dockerignore whitelists.

A copy of this repository, with data, runs, venvs, checkpoints, reports and caches planted in
it, is built into a ``FROM scratch`` image that copies the whole context (``COPY . /ctx/``);
the files that arrive are compared with the rule below, written out plainly. Both of the
engine's builders are checked: the classic one and BuildKit, whose matchers differ.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.deploy.dockerfile import ROOT, copy_sources, stages
from tests.deploy.engine import Engine, unavailable

pytestmark = pytest.mark.docker

# What a working copy holds besides the sources: none of it may reach the engine.
PLANTED = [
    ".git/HEAD",
    ".venv/bin/python",
    ".venv-serve/lib/python3.11/site-packages/torch/__init__.py",
    "data/animals10/raw-img/cane/1.jpeg",
    "runs/demo/best.pt",
    "runs/demo/model.onnx",
    "artifacts/demo/best.pt",
    "artifacts/demo/export_report.json",
    "artifacts/demo/sub/model.onnx",
    "service/__pycache__/app.cpython-311.pyc",
    "train/__pycache__/run.cpython-311.pyc",
    ".pytest_cache/v/cache/nodeids",
    "notes.txt",
    # exported models: these must arrive, for --build-arg MODEL=artifacts/NAME/FILE.onnx
    "artifacts/demo/model.onnx",
    "artifacts/demo/model.int8.onnx",
    "artifacts/animals10/model.fp16.onnx",
    "artifacts/.gitkeep",
]
SKIPPED_WHEN_COPYING = {
    ".git",
    ".venv",
    ".venv-serve",
    "runs",
    "data",
    "artifacts",
    "node_modules",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
}
SOURCES = ("service/", "train/", "export/", "core/", "deploy/models/")
FILES = {"requirements-serve.txt", "requirements-train.txt", "deploy/serve-install.sh"}


def whitelisted(path: str) -> bool:
    """The rule .dockerignore implements: the sources the images copy, and exported .onnx files
    one folder deep in artifacts/ (files lying directly in artifacts/, only .gitkeep here, go too:
    re-including the NAME folders cannot tell them apart)."""
    parts = path.split("/")
    if "__pycache__" in parts or path.endswith(".pyc"):
        return False
    if path in FILES or path.startswith(SOURCES):
        return True
    return parts[0] == "artifacts" and (len(parts) == 2 or (len(parts) == 3 and path.endswith(".onnx")))


def working_copy(dest: Path) -> set[str]:
    """This repository's files (heavy and ignored folders left out) plus PLANTED; relative paths."""
    files = set()
    for dirpath, dirnames, filenames in os.walk(ROOT):
        dirnames[:] = [d for d in dirnames if d not in SKIPPED_WHEN_COPYING]
        for name in filenames:
            src = Path(dirpath) / name
            if src.is_symlink() or name in SKIPPED_WHEN_COPYING:  # a worktree's .git is a file
                continue
            rel = src.relative_to(ROOT).as_posix()
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
            files.add(rel)
    for rel in PLANTED:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_text(f"planted: {rel}\n")
        files.add(rel)
    return files


def buildkit_cli(engine: Engine) -> list[str]:
    """A docker CLI that builds with BuildKit: buildx where installed, else a pre-23 CLI
    (Debian's docker.io ships one) with DOCKER_BUILDKIT=1."""
    if subprocess.run(["docker", "buildx", "version"], capture_output=True, env=engine.env).returncode == 0:
        return ["docker", "buildx", "build", "--load"]
    if Path("/usr/bin/docker").exists():
        return ["/usr/bin/docker", "build"]
    unavailable("no docker CLI with BuildKit here (no buildx, no /usr/bin/docker from docker.io)")


def sent_context(engine: Engine, context: Path, builder: str, tag: str) -> set[str]:
    """Files under the context as the engine received them."""
    dockerfile = context.parent / "Dockerfile.list-context"
    dockerfile.write_text("FROM scratch\nCOPY . /ctx/\n")
    if builder == "classic":
        cli, env = ["docker", "build"], {**engine.env, "DOCKER_BUILDKIT": "0"}
    else:
        cli, env = buildkit_cli(engine), {**engine.env, "DOCKER_BUILDKIT": "1"}
    build = subprocess.run(
        [*cli, "-q", "-f", str(dockerfile), "-t", tag, str(context)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    container = engine.docker("create", tag, "/none").stdout.strip()
    try:
        exported = subprocess.run(
            ["docker", "export", container], env=engine.env, capture_output=True, check=True, timeout=120
        ).stdout
    finally:
        engine.docker("rm", container, check=False)
    with tarfile.open(fileobj=io.BytesIO(exported)) as tar:
        return {m.name.removeprefix("ctx/") for m in tar.getmembers() if m.isfile() and m.name.startswith("ctx/")}


@pytest.mark.parametrize("builder", ["classic", "buildkit"])
def test_build_context_is_the_whitelist(engine: Engine, tmp_path: Path, builder: str) -> None:
    files = working_copy(tmp_path / "repo")
    sent = sent_context(engine, tmp_path / "repo", builder, f"context-{builder}")
    assert sent == {f for f in files if whitelisted(f)}, (
        f"sent but not whitelisted: {sorted(sent - {f for f in files if whitelisted(f)})}; "
        f"whitelisted but not sent: {sorted({f for f in files if whitelisted(f)} - sent)}"
    )
    for dockerfile in ("Dockerfile.serve", "Dockerfile.train"):
        for stage in stages(ROOT / dockerfile):
            for src in copy_sources(stage):
                assert any(f == src or f.startswith(src.rstrip("/") + "/") for f in sent), (dockerfile, src)
