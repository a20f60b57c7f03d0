"""deploy/ec2 against a real engine with the real serve image: the user-data's first start,
then the blue/green switch that update.sh triggers, under a request loop that must see no
failed request.

The private engine's mount namespace plays the instance: the user-data and classifier-deploy
write /usr/local/bin, /etc/classifier and /var/log there, not on this machine. The proxy is
the image classifier-deploy.sh names, pulled, or a stand-in built from Debian's nginx package.
Not run here (no AWS account): the ECR login, the S3 model download and SSM's send-command;
update.sh's DRY_RUN=1 prints the command SSM would run as root, and the test runs that.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.deploy.conftest import REPORT, ServeImage, free_port, photo
from tests.deploy.dockerfile import ROOT
from tests.deploy.engine import Engine, provide_proxy

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

EC2 = ROOT / "deploy" / "ec2"


@pytest.fixture(scope="module")
def proxy(engine: Engine, python_base: str) -> str:
    name = re.search(r"^proxy_image=(\S+)$", (EC2 / "classifier-deploy.sh").read_text(), flags=re.M).group(1)
    REPORT.append(f"proxy {name}: {provide_proxy(engine, name, python_base)}")
    return name


def script(path: str, **env: str) -> str:
    """Run one of the deploy/ec2 scripts on this machine (no aws on the PATH) and return its output."""
    result = subprocess.run(
        ["bash", path], cwd=ROOT, env={"PATH": "/usr/bin:/bin", **env}, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


class RequestLoop(threading.Thread):
    """POST /predict through the proxy, one new connection each time, until stopped."""

    def __init__(self, url: str, body: bytes) -> None:
        super().__init__(daemon=True)
        self.url, self.body = url, body
        self.results: list[tuple[int | str, str | None]] = []  # (status or error, model version)
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            try:
                r = httpx.post(
                    f"{self.url}/predict",
                    content=self.body,
                    timeout=30,
                    headers={"Content-Type": "application/octet-stream"},
                )
                self.results.append((r.status_code, r.json()["model"]["version"] if r.status_code == 200 else None))
            except (httpx.HTTPError, ValueError) as exc:
                self.results.append((repr(exc), None))
            time.sleep(0.02)

    def stop(self) -> None:
        self.done.set()
        self.join(timeout=60)


def predict_version(url: str) -> str:
    r = httpx.post(f"{url}/predict", files={"file": ("photo.jpg", photo(), "image/jpeg")}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["model"]["version"]


def test_user_data_start_then_blue_green_update_with_no_failed_request(
    engine: Engine, serve_image: ServeImage, serve_image_v2: ServeImage, proxy: str, tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    user_data = tmp_path / "user-data"
    user_data.write_text(
        script("deploy/ec2/render-user-data.sh", IMAGE=serve_image.tag, AWS_REGION="eu-west-1", PORT=str(port))
    )

    # Boot: the user-data installs classifier-deploy and runs it (Docker already runs: no dnf/systemctl).
    start = time.monotonic()
    boot = engine.on_host(["bash", str(user_data)], timeout=400)
    boot_s = time.monotonic() - start
    assert boot.returncode == 0, boot.stdout[-4000:] + boot.stderr[-4000:]
    assert (
        engine.host_path("/usr/local/bin/classifier-deploy").read_text() == (EC2 / "classifier-deploy.sh").read_text()
    )
    log = engine.host_path("/var/log/classifier-deploy.log").read_text()
    assert f"serving {serve_image.tag} from classifier-blue on port {port}" in log
    assert "SAVED_IMAGE=" in engine.host_path("/etc/classifier/env").read_text()
    assert httpx.get(f"{url}/readyz", timeout=5).status_code == 200
    assert predict_version(url) == serve_image.version

    # Update: the command update.sh sends through SSM, run as root on the instance, under load.
    command = script(
        "deploy/ec2/update.sh",
        AWS_REGION="eu-west-1",
        INSTANCE_ID="i-0123456789abcdef0",
        IMAGE=serve_image_v2.tag,
        DRY_RUN="1",
    ).strip()
    assert command.endswith("/usr/local/bin/classifier-deploy")
    loop = RequestLoop(url, photo())
    loop.start()
    time.sleep(1)
    start = time.monotonic()
    update = engine.on_host(["bash", "-c", command], timeout=400)
    update_s = time.monotonic() - start
    time.sleep(1)
    loop.stop()
    assert update.returncode == 0, update.stdout[-4000:] + update.stderr[-4000:]
    assert f"serving {serve_image_v2.tag} from classifier-green" in update.stdout

    failed = [r for r in loop.results if r[0] != 200]
    versions = [v for _, v in loop.results]
    assert failed == [], failed[:5]
    assert versions[0] == serve_image.version and versions[-1] == serve_image_v2.version
    assert versions == sorted(versions), "an answer from the old model after the new one"
    names = set(engine.docker("ps", "--format", "{{.Names}}").stdout.split())
    assert names == {"classifier-proxy", "classifier-green"}
    REPORT.append(
        f"EC2 user-data start {boot_s:.0f} s; blue/green update {update_s:.0f} s with "
        f"{len(loop.results)} requests through the proxy, {len(failed)} failed, "
        f"model {serve_image.version} -> {serve_image_v2.version}"
    )
