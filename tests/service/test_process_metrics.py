"""The process gauges the memory and restart alerts read: resident memory, start time, the cgroup limit."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from service.process_metrics import memory_limit


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"memory.max": "2147483648\n"}, 2147483648.0),  # cgroup v2 with a limit
        ({"memory.max": "max\n"}, math.inf),  # cgroup v2 without
        ({"memory/memory.limit_in_bytes": "1073741824\n"}, 1073741824.0),  # cgroup v1 with a limit
        ({"memory/memory.limit_in_bytes": "9223372036854771712\n"}, math.inf),  # cgroup v1's "unlimited"
        ({}, math.inf),  # no cgroup at all
    ],
)
def test_memory_limit_from_cgroup_v1_and_v2(tmp_path: Path, files: dict[str, str], expected: float) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert memory_limit(tmp_path) == expected


def test_metrics_expose_memory_start_time_and_limit(client: TestClient) -> None:
    samples = {s.name: s.value for f in text_string_to_metric_families(client.get("/metrics").text) for s in f.samples}
    assert samples["process_resident_memory_bytes"] > 10e6
    assert samples["process_start_time_seconds"] > 1.6e9
    assert samples["memory_limit_bytes"] == memory_limit()
    assert "process_cpu_seconds_total" in samples
