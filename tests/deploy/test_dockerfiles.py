"""The two Dockerfiles and the build context, checked by reading them (no Docker engine here)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.deploy.dockerfile import ROOT, Stage, copy_sources, instructions, stages

SERVE = ROOT / "Dockerfile.serve"
TRAIN = ROOT / "Dockerfile.train"
PINNED_PYTHON = re.compile(r"^python:3\.11\.\d+-slim-\w+$")  # a patch release, never a moving tag


def final(path: Path) -> Stage:
    return stages(path)[-1]


def non_root_user(stage: Stage) -> str:
    users = stage.all("USER")
    assert users, "no USER: the container would run as root"
    user = users[-1].args.split(":")[0]
    assert user not in ("root", "0"), f"USER {user} is root"
    return user


@pytest.mark.parametrize("dockerfile", [SERVE, TRAIN], ids=lambda p: p.name)
def test_every_copy_source_exists(dockerfile: Path) -> None:
    """Whether they reach the build context is checked on a real engine (test_build_context.py)."""
    for stage in stages(dockerfile):
        for src in copy_sources(stage):
            assert (ROOT / src).exists(), f"{dockerfile.name}: COPY source {src} does not exist"


@pytest.mark.parametrize("dockerfile", [SERVE, TRAIN], ids=lambda p: p.name)
def test_no_syntax_directive(dockerfile: Path) -> None:
    """`# syntax=docker/dockerfile:1` makes BuildKit fetch its frontend from a registry (fails
    offline); the builders' own frontends build these files, the classic builder included."""
    assert "# syntax=" not in dockerfile.read_text().lower()


def test_both_images_start_from_the_same_pinned_python() -> None:
    """One base to pull (or stand in for) and one interpreter that the venvs link to."""
    assert {s.image for s in stages(SERVE) + stages(TRAIN)} == {stages(SERVE)[0].image}


def test_serve_image_is_two_stages_on_one_pinned_python() -> None:
    builder, runtime = stages(SERVE)
    assert PINNED_PYTHON.match(builder.image), builder.image
    # The venv's interpreter is a symlink into the base image: both stages need the same one.
    assert runtime.image == builder.image


def test_serve_builder_installs_with_the_shared_script_and_serve_requirements_only() -> None:
    builder = stages(SERVE)[0]
    assert set(copy_sources(builder)) == {"requirements-serve.txt", "deploy/serve-install.sh"}
    runs = " ".join(i.args for i in builder.all("RUN"))
    assert "serve-install.sh /opt/venv requirements-serve.txt" in runs
    code = " ".join(i.args for i in instructions(SERVE))  # comments may say "no torch"
    assert "requirements-train.txt" not in code
    assert "torch" not in code


def test_serve_final_stage_has_no_compilers_and_copies_venv_and_service_only() -> None:
    runtime = final(SERVE)
    runs = " ".join(i.args for i in runtime.all("RUN"))
    for forbidden in ("apt-get", "apk ", "gcc", "g++", "build-essential", "make ", "pip install"):
        assert forbidden not in runs, f"final stage runs {forbidden!r}"
    assert copy_sources(runtime) == ["core/", "service/", "deploy/models"]  # deploy/models: the MODEL default
    from_builder = [i.argv() for i in runtime.all("COPY") if "--from=builder" in i.args]
    assert from_builder == [["--from=builder", "/opt/venv", "/opt/venv"]]


def test_serve_runtime_contract() -> None:
    runtime = final(SERVE)
    assert non_root_user(runtime).isdigit()
    assert runtime.all("CMD")[-1].argv() == ["python", "-m", "service"]
    env = " ".join(i.args for i in runtime.all("ENV"))
    assert "INTRA_OP_THREADS=0" in env  # threads from the cgroup CPU quota
    args = {i.args.split("=")[0]: i.args.split("=", 1)[1] for i in runtime.all("ARG")}
    assert args["MODEL_PATH"].startswith("/models/") and "MODEL_PATH=$MODEL_PATH" in env
    health = runtime.all("HEALTHCHECK")
    assert len(health) == 1 and "/healthz" in health[0].args


def healthcheck_argv() -> list[str]:
    """The image's HEALTHCHECK command, with `python` being this interpreter."""
    text = final(SERVE).all("HEALTHCHECK")[0].args
    argv = json.loads(text[text.index("CMD") + 3 :].strip())
    assert argv[0] == "python"
    return [sys.executable, *argv[1:]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_healthcheck_command_passes_against_the_running_service_and_fails_without_it(tmp_path: Path) -> None:
    from tests.service.modelgen import write_rgb_model

    port = free_port()
    env = {
        **os.environ,
        "MODEL_PATH": str(write_rgb_model(tmp_path / "model.onnx")),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "INTRA_OP_THREADS": "1",
        "LOG_LEVEL": "warning",
    }
    assert subprocess.run(healthcheck_argv(), env=env, capture_output=True).returncode != 0  # nothing listens yet
    server = subprocess.Popen([sys.executable, "-m", "service"], cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 60
        while subprocess.run(healthcheck_argv(), env=env, capture_output=True).returncode != 0:
            assert server.poll() is None, "the service exited"
            assert time.monotonic() < deadline, "HEALTHCHECK never passed"
            time.sleep(0.3)
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_train_image_contract() -> None:
    (stage,) = stages(TRAIN)
    assert PINNED_PYTHON.match(stage.image), stage.image
    assert non_root_user(stage).isdigit()
    assert stage.all("ENTRYPOINT")[-1].argv() == ["python", "-m", "train"]
    volumes = set(stage.all("VOLUME")[-1].argv())
    assert {"/data", "/runs", "/artifacts"} <= volumes
    assert {"core/", "train/", "export/"} <= set(copy_sources(stage))
    assert "service/" not in copy_sources(stage)  # training stands on core, not on the web service
    runs = " ".join(i.args for i in stage.all("RUN"))
    assert "-r requirements-train.txt" in runs
    assert not re.search(r"install[^&]*\btorch\b", runs), "torch must come from requirements-train.txt's pin"


def test_train_image_copies_every_requirements_file_it_includes() -> None:
    """requirements-train.txt says `-r requirements-serve.txt`: pip needs that file beside it."""
    included = re.findall(r"^-r\s+(\S+)", (ROOT / "requirements-train.txt").read_text(), flags=re.M)
    assert included
    assert set(included) <= set(copy_sources(stages(TRAIN)[0]))
