"""``cpu_quota`` reads the CPU limit the kernel enforces, from cgroup v2 or v1 files: fake
cgroup trees under a temporary root here; tests/deploy/test_serve_image.py checks the real
one with ``docker run --cpus 1``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.runtime import cgroup_quota, cpu_quota

V1 = "cpu/cpu.cfs_quota_us", "cpu/cpu.cfs_period_us"


def cgroup_tree(root: Path, files: dict[str, str]) -> Path:
    root.mkdir()
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text + "\n")
    return root


@pytest.mark.parametrize(
    ("files", "quota"),
    [
        ({"cpu.max": "max 100000"}, None),  # v2, no limit
        ({"cpu.max": "100000 100000"}, 1),  # v2: docker run --cpus 1
        ({"cpu.max": "250000 100000"}, 2),  # 2.5 CPUs: 2 whole threads
        ({"cpu.max": "50000 100000"}, 1),  # half a CPU still gets a thread
        ({V1[0]: "-1", V1[1]: "100000"}, None),  # v1 (Docker 20.10 here), no limit
        ({V1[0]: "100000", V1[1]: "100000"}, 1),  # v1: docker run --cpus 1
        ({V1[0]: "400000", V1[1]: "200000"}, 2),
        ({"cpu,cpuacct/cpu.cfs_quota_us": "300000", "cpu,cpuacct/cpu.cfs_period_us": "100000"}, 3),
        ({"cpu.cfs_quota_us": "200000", "cpu.cfs_period_us": "100000"}, 2),  # v1 controller mounted at the root
        ({}, None),  # no cgroup files at all
    ],
)
def test_cgroup_quota(tmp_path: Path, files: dict[str, str], quota: int | None) -> None:
    assert cgroup_quota(cgroup_tree(tmp_path / "cgroup", files)) == quota


def test_cpu_quota_is_the_quota_capped_by_the_affinity_mask(tmp_path: Path) -> None:
    cpus = len(os.sched_getaffinity(0))
    assert cpu_quota(cgroup_tree(tmp_path / "one", {V1[0]: "100000", V1[1]: "100000"})) == 1
    assert cpu_quota(cgroup_tree(tmp_path / "more", {"cpu.max": f"{(cpus + 8) * 100000} 100000"})) == cpus
    assert cpu_quota(cgroup_tree(tmp_path / "none", {})) == cpus


def test_memory_mb_reads_this_process_and_defaults_for_a_gone_one() -> None:
    from core.runtime import memory_mb

    resident, peak = memory_mb(), memory_mb("VmHWM")
    assert 10 < resident <= peak  # a Python process with numpy and onnxruntime loaded
    assert memory_mb(pid=2**22 + 1, default=-1.0) == -1.0  # above Linux's pid_max: no such process
