"""A private Docker engine for the image tests, and the base images they need.

``Engine`` starts Debian's ``dockerd`` on its own socket, data root and exec root in a
temporary folder, with no bridge, no iptables rules and no IP forwarding (builds and
containers use ``--network host``), and stops it by its PID: nothing is left running or
changed on the machine. The daemon runs in a mount namespace of its own whose ``/etc``,
``/opt``, ``/usr/local/bin`` and ``/var/log`` are copy-on-write overlays kept in that folder:
it plays the EC2 instance, so the deploy scripts run "on the instance" (``Engine.on_host``)
write there, and dockerd's own ``/etc/docker/key.json`` never lands on this machine.

Where the tests cannot run (not root, no dockerd) they are left out with one line saying
why (tests/deploy/conftest.py), or fail when ``CI`` is set, so CI never skips them.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import pytest

from tests.deploy.dockerfile import ROOT

OVERLAID = ("/etc", "/opt", "/usr/local/bin", "/var/log")
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "image-classifier"
STANDIN_VERSION = 1  # bump when the stand-in recipe changes: the cached tarball is named after it
MB = 1e6
PREFIX = "ic-dockerd-"  # the engines' temporary folders


def die_with_parent() -> None:
    """prctl(PR_SET_PDEATHSIG, SIGTERM) in the child: the kernel stops it when its parent dies."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


def remove_abandoned_engines() -> None:
    """Folders left by test sessions that died without their finalizers (their dockerd is gone)."""
    for folder in Path(tempfile.gettempdir()).glob(f"{PREFIX}*"):
        try:
            alive = Path(f"/proc/{int((folder / 'dockerd.pid').read_text())}").exists()
        except (OSError, ValueError):  # no pid file: a session starting now, or one long dead
            alive = time.time() - folder.stat().st_mtime < 3600
        if not alive:
            shutil.rmtree(folder, ignore_errors=True)


def on_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def unavailable(reason: str) -> NoReturn:
    """Skip with one line; on CI the same line fails the test instead."""
    if on_ci():
        pytest.fail(f"{reason} (CI is set: the image tests may not skip)", pytrace=False)
    pytest.skip(reason)


def missing_requirement() -> str | None:
    """Why the image tests cannot run on this machine, or None when they can."""
    if os.geteuid() != 0:
        return "not root: they start a private dockerd (CI runs them as root)"
    for tool in ("dockerd", "docker", "unshare", "nsenter"):
        if not shutil.which(tool):
            return f"no {tool}: `make docker-deps` installs Debian's docker.io (root and apt-get)"
    return None


class Engine:
    """dockerd on a private socket; ``docker(...)`` runs the CLI against it."""

    def __init__(self) -> None:
        remove_abandoned_engines()
        # A short path: the socket's must stay under the 108-byte limit of unix sockets.
        self.root = Path(tempfile.mkdtemp(prefix=PREFIX))
        self.sock = self.root / "d.sock"
        # DOCKER_CONFIG: the CLI's own files (BuildKit's node id...) stay in that folder too.
        self.env = {**os.environ, "DOCKER_HOST": f"unix://{self.sock}", "DOCKER_CONFIG": str(self.root / "cli")}
        self.proc: subprocess.Popen[bytes] | None = None

    # --- lifecycle -------------------------------------------------------------------------
    def start(self, timeout: float = 60) -> None:
        mounts = []
        for target in OVERLAID:
            layer = self.root / "host" / target.strip("/").replace("/", "-")
            (layer / "upper").mkdir(parents=True)
            (layer / "work").mkdir()
            mounts.append(
                f"mount -t overlay overlay -o lowerdir={target},upperdir={layer}/upper,workdir={layer}/work {target}"
            )
        dockerd = [
            "dockerd",
            "-H",
            f"unix://{self.sock}",
            "--data-root",
            str(self.root / "data"),
            "--exec-root",
            str(self.root / "exec"),
            "--pidfile",
            str(self.root / "dockerd.pid"),
            "--bridge=none",
            "--iptables=false",
            "--ip-forward=false",
        ]
        script = " && ".join([*mounts, 'exec "$@"'])
        # unshare and sh exec into dockerd: the Popen PID is dockerd's, and its group holds containerd.
        # If this process dies without its finalizers (SIGKILL), the kernel sends dockerd SIGTERM.
        with (self.root / "dockerd.log").open("wb") as log:
            self.proc = subprocess.Popen(
                ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *dockerd],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        deadline = time.monotonic() + timeout
        while self.docker("version", check=False, timeout=10).returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = (self.root / "dockerd.log").read_text(errors="replace")[-3000:]
                self.stop()
                raise RuntimeError(f"dockerd did not start:\n{tail}")
            time.sleep(0.2)

    def stop(self) -> None:
        """Containers, then networks (their bridges live in the host's network namespace),
        then the daemon by its PID, then the folder."""
        networks: list[str] = []
        if self.proc is not None and self.proc.poll() is None:
            ids = self.docker("ps", "-aq", check=False, timeout=30).stdout.split()
            if ids:
                self.docker("rm", "-f", *ids, check=False, timeout=120)
            networks = self.docker("network", "ls", "-q", "--filter", "type=custom", check=False).stdout.split()
            self.docker("network", "prune", "-f", check=False, timeout=60)
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)
        for net in networks:  # a bridge that a failed prune left behind
            if Path(f"/sys/class/net/br-{net[:12]}").exists():
                subprocess.run(["ip", "link", "delete", f"br-{net[:12]}"], capture_output=True, check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    # --- the CLI ---------------------------------------------------------------------------
    def docker(
        self, *args: str, check: bool = True, timeout: float = 120, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["docker", *args], env=self.env, capture_output=True, timeout=timeout, input=input, text=True
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"docker {' '.join(args)} exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        return result

    def on_host(
        self,
        argv: Sequence[str],
        timeout: float,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command in the daemon's mount namespace: the instance the EC2 scripts think they are on."""
        assert self.proc is not None
        return subprocess.run(
            ["nsenter", "--target", str(self.proc.pid), "--mount", "--", *argv],
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def host_path(self, path: str) -> Path:
        """A path as the daemon's namespace sees it, readable from here."""
        assert self.proc is not None
        return Path(f"/proc/{self.proc.pid}/root") / path.lstrip("/")

    # --- images ----------------------------------------------------------------------------
    def has_image(self, name: str) -> bool:
        return self.docker("image", "inspect", name, check=False).returncode == 0

    def image_size(self, name: str) -> int:
        return int(self.docker("image", "inspect", "-f", "{{.Size}}", name).stdout)

    def layers(self, name: str) -> list[tuple[int, str]]:
        """(bytes, created by) for each layer, oldest first."""
        out = self.docker(
            "history", "--no-trunc", "--human=false", "--format", "{{.Size}}\t{{.CreatedBy}}", name
        ).stdout
        rows = [line.split("\t", 1) for line in out.splitlines()]
        return [(int(size), created) for size, created in reversed(rows)]


def layer_table(engine: Engine, image: str) -> list[str]:
    """Every layer with a size, as ``docker history`` lists them (newest first), for the report."""
    lines = []
    for size, created in reversed(engine.layers(image)):
        if size:
            step = re.sub(r"^/bin/sh -c (#\(nop\) )?", "", created).strip() or "(base image)"
            lines.append(f"    {size / MB:9.1f} MB  {step[:90]}")
    return lines


# --- the base images -------------------------------------------------------------------------


def host_apt_sources(suite: str = "bookworm") -> list[str]:
    """This machine's apt source lines for ``suite`` (and -updates, -security) in one-line form,
    from one-line ``*.list`` and deb822 ``*.sources`` files; [] when it has none (mmdebstrap then
    uses deb.debian.org)."""
    apt = Path("/etc/apt")
    lines: list[str] = []
    for path in [apt / "sources.list", *sorted((apt / "sources.list.d").glob("*.list"))]:
        for line in path.read_text().splitlines() if path.is_file() else []:
            words = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()  # drop [options]
            if len(words) >= 3 and words[0] == "deb" and words[2].startswith(suite):
                lines.append(" ".join(words))
    for path in sorted((apt / "sources.list.d").glob("*.sources")):
        for stanza in path.read_text().split("\n\n"):
            fields = dict(re.findall(r"^([\w-]+):[ \t]*(.*)$", stanza, flags=re.M))
            if "deb" in fields.get("Types", "").split():
                lines += [
                    f"deb {uri} {dist} {fields.get('Components', 'main')}"
                    for uri in fields.get("URIs", "").split()
                    for dist in fields.get("Suites", "").split()
                    if dist.startswith(suite)
                ]
    return lines


def build_python_standin(engine: Engine, name: str) -> None:
    """Debian bookworm's python3 (3.11) from mmdebstrap, imported under the official image's name,
    with /usr/local/bin/python{,3} where the official image has them, trusting this machine's
    extra CA certificates (pip inside a build may go through a TLS-re-signing proxy)."""
    if not shutil.which("mmdebstrap"):
        unavailable(f"no registry serves {name} and mmdebstrap is missing: `make docker-deps` installs it")
    certs = sorted(Path("/usr/local/share/ca-certificates").glob("*.crt"))
    hook = " && ".join(
        [
            'mkdir -p "$1/usr/local/share/ca-certificates"',
            *[f'cp {c} "$1/usr/local/share/ca-certificates/"' for c in certs],
            'chroot "$1" update-ca-certificates >/dev/null',
            'ln -s /usr/bin/python3 "$1/usr/local/bin/python3"',
            'ln -s /usr/bin/python3 "$1/usr/local/bin/python"',
        ]
    )
    rootfs = subprocess.Popen(
        [
            "mmdebstrap",
            "--quiet",
            "--variant=minbase",
            "--include=python3,python3-venv,ca-certificates",
            f"--customize-hook={hook}",
            "bookworm",
            "-",
            *host_apt_sources(),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        imported = subprocess.run(
            [
                "docker",
                "import",
                "--change",
                "ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
                "--change",
                "ENV LANG=C.UTF-8",
                "--change",
                'CMD ["python3"]',
                "-",
                name,
            ],
            stdin=rootfs.stdout,
            env=engine.env,
            capture_output=True,
            text=True,
            timeout=900,
        )
    finally:
        assert rootfs.stdout is not None
        rootfs.stdout.close()
        stderr = rootfs.communicate(timeout=60)[1].decode(errors="replace")
    if rootfs.returncode != 0 or imported.returncode != 0:
        raise AssertionError(f"stand-in base {name} failed:\n{stderr[-3000:]}\n{imported.stderr[-2000:]}")


def provide_base(engine: Engine, name: str) -> str:
    """Make ``name`` available: pulled (a registry is reachable), else a stand-in loaded from the
    cache, else a stand-in built and cached. Returns how, for the report."""
    if engine.docker("pull", "--quiet", name, check=False, timeout=600).returncode == 0:
        return f"the official {name}, pulled"
    cached = CACHE / f"{re.sub(r'[^A-Za-z0-9.-]', '_', name)}.standin-v{STANDIN_VERSION}.tar"
    if cached.is_file():
        start = time.monotonic()
        engine.docker("load", "--quiet", "--input", str(cached), timeout=300)
        return f"a stand-in (Debian bookworm's python3), loaded from {cached} in {time.monotonic() - start:.0f} s"
    start = time.monotonic()
    build_python_standin(engine, name)
    built = time.monotonic() - start
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(f".{os.getpid()}.part")
    engine.docker("save", "--output", str(partial), name, timeout=300)
    partial.replace(cached)
    return f"a stand-in (Debian bookworm's python3 from mmdebstrap), built in {built:.0f} s and cached in {cached}"


def provide_proxy(engine: Engine, name: str, python_base: str) -> str:
    """The official nginx image when a registry serves it, else Debian's nginx package on the
    Debian stand-in, tagged with the official name so classifier-deploy.sh runs unchanged."""
    if engine.docker("pull", "--quiet", name, check=False, timeout=600).returncode == 0:
        return f"the official {name}, pulled"
    start = time.monotonic()
    dockerfile = (ROOT / "tests" / "deploy" / "proxy-standin.Dockerfile").read_text()
    engine.docker(
        "build",
        "--network",
        "host",
        "--build-arg",
        f"BASE={python_base}",
        "-t",
        name,
        "-",
        input=dockerfile,
        timeout=600,
    )
    return f"a stand-in (Debian bookworm's nginx package), built in {time.monotonic() - start:.0f} s"
