"""The process's own gauges, for the memory and restart alerts.

``process_*`` (resident memory, CPU seconds, open files, start time) come from
prometheus_client's ProcessCollector, registered on the app's own registry.
``memory_limit_bytes`` is the cgroup's memory limit (v2 ``memory.max`` or v1
``memory.limit_in_bytes``), +Inf without one, so ``resident / limit`` is a
ratio that is simply 0 on an unlimited host instead of a missing series.
"""

from __future__ import annotations

import math
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, ProcessCollector

CGROUP = Path("/sys/fs/cgroup")
_UNLIMITED_V1 = 1 << 60  # cgroup v1 writes "no limit" as a page-rounded 2**63 - 1


def memory_limit(root: Path = CGROUP) -> float:
    """Bytes this container may use, or +Inf when no cgroup limit applies."""
    for path in (root / "memory.max", root / "memory" / "memory.limit_in_bytes"):
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text == "max" or not text.isdigit() or int(text) >= _UNLIMITED_V1:
            return math.inf
        return float(text)
    return math.inf


def register_process_metrics(registry: CollectorRegistry, root: Path = CGROUP) -> None:
    ProcessCollector(registry=registry)
    limit = Gauge("memory_limit_bytes", "The cgroup memory limit (+Inf when unlimited)", registry=registry)
    limit.set(memory_limit(root))
