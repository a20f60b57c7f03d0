"""How every stage opens onnxruntime: explicit thread counts sized from the CPUs really available.

onnxruntime's default is one intra-op thread per core of the host, which in a
container limited to 2 CPUs (or beside a decode pool) oversubscribes the
machine. ``cpu_quota`` reads the limit the way the kernel enforces it.
"""

from __future__ import annotations

import os
from pathlib import Path

import onnxruntime as ort

CGROUP = Path("/sys/fs/cgroup")


def _quota_v2(root: Path) -> int | None:
    quota, period = (root / "cpu.max").read_text().split()[:2]
    return None if quota == "max" else max(1, int(quota) // int(period))


def _quota_v1(root: Path) -> int | None:
    for folder in (root / "cpu", root / "cpu,cpuacct", root):
        try:
            quota = int((folder / "cpu.cfs_quota_us").read_text())
            period = int((folder / "cpu.cfs_period_us").read_text())
        except (OSError, ValueError):
            continue
        return None if quota <= 0 or period <= 0 else max(1, quota // period)
    return None


def cgroup_quota(root: Path = CGROUP) -> int | None:
    """Whole CPUs granted by the cgroup (v2 ``cpu.max`` or v1 ``cpu.cfs_quota_us``); None when unlimited."""
    try:
        return _quota_v2(root)
    except (OSError, ValueError):
        return _quota_v1(root)


def cpu_quota(root: Path = CGROUP) -> int:
    """CPUs this process may use: the cgroup quota when set, capped by the affinity mask."""
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        affinity = os.cpu_count() or 1
    quota = cgroup_quota(root)
    return max(1, min(quota, affinity) if quota else affinity)


def memory_mb(key: str = "VmRSS", pid: int | str = "self", default: float = float("nan")) -> float:
    """A process's ``VmRSS`` (resident) or ``VmHWM`` (peak resident) in MB, from Linux's
    ``/proc/PID/status``; ``default`` where it cannot be read (another OS, a process that ended)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return default


def session_options(threads: int, spinning: bool = False) -> ort.SessionOptions:
    """Explicit thread counts (no oversubscription); every session in the project is opened this way."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    # Spinning workers wait hot between runs; on a 2-core box that CPU is what decoding needs.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return opts


def open_session(
    model: Path | bytes, threads: int | None = None, providers: list[str] | None = None, spinning: bool = False
) -> ort.InferenceSession:
    """A session on the first available of ``providers`` (default CPU), ``threads`` default: ``cpu_quota()``."""
    available = set(ort.get_available_providers())
    chosen = [p for p in (providers or ["CPUExecutionProvider"]) if p in available] or ["CPUExecutionProvider"]
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(
        source, sess_options=session_options(threads or cpu_quota(), spinning), providers=chosen
    )
