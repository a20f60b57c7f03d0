"""The EC2 scripts without AWS: parameter errors come before any AWS call, the user-data is what
the instance will run, and cost.py's arithmetic. PATH holds no `aws`, so nothing can reach AWS."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.deploy.dockerfile import ROOT

EC2 = ROOT / "deploy" / "ec2"
IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/image-classifier:v1"


def run_script(script: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", script], cwd=ROOT, env={"PATH": "/usr/bin:/bin", **env}, capture_output=True, text=True, timeout=30
    )


@pytest.mark.parametrize(
    ("script", "env", "missing"),
    [
        ("deploy/ec2/push-ecr.sh", {}, "AWS_REGION"),
        ("deploy/ec2/push-ecr.sh", {"AWS_REGION": "eu-west-1"}, "TAG"),
        ("deploy/ec2/launch.sh", {"AWS_REGION": "eu-west-1"}, "IMAGE"),
        ("deploy/ec2/update.sh", {"AWS_REGION": "eu-west-1"}, "INSTANCE_ID"),
        ("deploy/ec2/update.sh", {"AWS_REGION": "eu-west-1", "INSTANCE_ID": "i-1"}, "IMAGE"),
        ("deploy/ec2/render-user-data.sh", {"AWS_REGION": "eu-west-1"}, "IMAGE"),
        ("deploy/k8s/apply.sh", {}, "IMAGE"),
    ],
)
def test_missing_parameter_is_named(script: str, env: dict[str, str], missing: str) -> None:
    result = run_script(script, **env)
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {missing}"), result.stderr


@pytest.mark.parametrize(
    ("script", "env", "message"),
    [
        (
            "deploy/ec2/push-ecr.sh",
            {"AWS_REGION": "eu-west-1", "TAG": "v1", "MODEL": "artifacts/nope/model.onnx"},
            "MODEL=artifacts/nope/model.onnx is not a file",
        ),
        (
            "deploy/ec2/render-user-data.sh",
            {"AWS_REGION": "eu-west-1", "IMAGE": IMAGE, "MODEL_S3": "bucket/m.onnx"},
            "MODEL_S3 must be an s3:// URI",
        ),
        (
            "deploy/ec2/launch.sh",
            {"AWS_REGION": "eu-west-1", "IMAGE": IMAGE, "SSH_CIDR": "203.0.113.7/32"},
            "SSH_CIDR needs KEY_NAME",
        ),
    ],
)
def test_bad_parameter_is_refused(script: str, env: dict[str, str], message: str) -> None:
    result = run_script(script, **env)
    assert result.returncode == 2 and message in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("script", "env"),
    [
        ("deploy/ec2/push-ecr.sh", {"AWS_REGION": "eu-west-1", "TAG": "v1"}),
        ("deploy/ec2/launch.sh", {"AWS_REGION": "eu-west-1", "IMAGE": IMAGE}),
        ("deploy/ec2/update.sh", {"AWS_REGION": "eu-west-1", "INSTANCE_ID": "i-1", "IMAGE": IMAGE}),
    ],
)
def test_valid_parameters_get_as_far_as_needing_aws(script: str, env: dict[str, str]) -> None:
    result = run_script(script, **env)
    assert result.returncode == 2 and "aws is not installed" in result.stderr, result.stderr


def render(**env: str) -> str:
    result = run_script("deploy/ec2/render-user-data.sh", **env)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_user_data_installs_classifier_deploy_verbatim_and_fits_ec2_limit() -> None:
    user_data = render(IMAGE=IMAGE, AWS_REGION="eu-west-1")
    assert user_data.startswith("#!/bin/bash\n")
    assert len(user_data.encode()) < 16 * 1024  # EC2's user-data limit
    embedded = user_data.split("<<'CLASSIFIER_DEPLOY'\n", 1)[1].split("\nCLASSIFIER_DEPLOY\n", 1)[0] + "\n"
    assert embedded == (EC2 / "classifier-deploy.sh").read_text()
    subprocess.run(["bash", "-n"], input=user_data, text=True, check=True)


def test_user_data_passes_awkward_values_through_intact() -> None:
    model = "s3://my models/it's v2/model.onnx"
    user_data = render(IMAGE=IMAGE, AWS_REGION="eu-west-1", MODEL_S3=model, PORT="8080")
    tail = user_data.split("chmod 0755 /usr/local/bin/classifier-deploy\n", 1)[1]
    shown = tail.replace("/usr/local/bin/classifier-deploy", "printenv IMAGE MODEL_S3 PORT AWS_REGION")
    out = subprocess.run(["bash", "-c", shown], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == [IMAGE, model, "8080", "eu-west-1"]


def cost(*args: str) -> list[list[str]]:
    out = subprocess.run(
        [sys.executable, str(EC2 / "cost.py"), *args], capture_output=True, text=True, check=True
    ).stdout
    return [[c.strip() for c in line.strip("|").split("|")] for line in out.splitlines()[3:]]


def test_cost_per_million_predictions() -> None:
    table = {(r[0], r[2]): r for r in cost("--fp32", "6.6", "--int8", "25", "--vcpus", "2")}
    assert set(table) == {(i, p) for i in ("c7i.large", "c7g.large", "c6i.large") for p in ("FP32", "INT8")}
    # 0.0725 $/h / (25 img/s * 3600 s/h) * 1e6 = $0.806 per million
    assert table["c7g.large", "INT8"][3:7] == ["25.0", "12.5", "0.81", "scaled from reference"]
    assert table["c7i.large", "FP32"][5] == "3.76"  # 0.08925 / (6.6 * 3600) * 1e6


def test_cost_uses_a_measured_rate_and_scales_by_vcpus_otherwise() -> None:
    rows = cost(
        "--fp32",
        "6.6",
        "--int8",
        "25",
        "--vcpus",
        "2",
        "--instance",
        "c7g.xlarge:4:0.145",
        "--instance",
        "c7g.large:2:0.0725:5:30",
    )
    by = {(r[0], r[2]): r for r in rows}
    assert by["c7g.xlarge", "INT8"][3] == "50.0" and by["c7g.xlarge", "INT8"][6] == "scaled from reference"
    assert by["c7g.large", "INT8"][3:7] == ["30.0", "15.0", "0.67", "measured"]
