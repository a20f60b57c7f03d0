"""deploy/grafana/image-classifier.json: valid JSON Grafana can import, laid out without overlaps,
showing what the issue asks for. Its queries are checked against the real /metrics and a real
Prometheus in test_prometheus.py."""

from __future__ import annotations

import json
from collections import Counter

from tests.deploy.observability import DASHBOARD, dashboard, dashboard_exprs, metric_names, panels


def not_json(constant: str) -> None:
    raise ValueError(f"{constant} is not JSON (Python's json accepts it, Grafana's parser does not)")


def test_the_dashboard_is_strict_json_with_an_id_and_a_datasource_variable() -> None:
    doc = json.loads(DASHBOARD.read_text(), parse_constant=not_json)
    assert doc["uid"] == "image-classifier" and doc["title"] and doc["schemaVersion"] >= 36
    variables = {v["name"]: v for v in doc["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert variables["job"]["current"]["value"] == "image-classifier"
    assert variables["instance"]["includeAll"] and variables["instance"]["allValue"] == ".*"


def test_every_panel_queries_prometheus_through_the_variables() -> None:
    for panel in panels():
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["description"] and panel["targets"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
    for where, expr in dashboard_exprs().items():
        assert metric_names(expr), f"{where} selects no metric: {expr}"
        if not where.startswith("variable") and "up{" not in expr and ":" not in "".join(metric_names(expr)):
            assert 'job="$job"' in expr and 'instance=~"$instance"' in expr, where


def test_panels_have_unique_ids_and_do_not_overlap() -> None:
    ids = Counter(p["id"] for p in dashboard()["panels"])
    assert [i for i, n in ids.items() if n > 1] == []
    cells: dict[tuple[int, int], str] = {}
    for p in dashboard()["panels"]:
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24, p["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{p['title']} overlaps {cells.get((x, y))}"
                cells[(x, y)] = p["title"]


def test_it_shows_what_an_operator_looks_for() -> None:
    """Requests by status, latency percentiles, batch sizes, stage times, in-flight and shed."""
    by_title = {p["title"]: " ".join(t["expr"] for t in p["targets"]) for p in panels()}
    wanted = {
        "Requests by status": ("http_requests_total", "by (status)"),
        "Latency percentiles (predictions)": ("histogram_quantile(0.99", "p99_target"),
        "Micro-batch sizes": ("inference_batch_size_bucket",),
        "Stage times (p95)": ("predict_stage_seconds_bucket", "by (stage, le)"),
        "Requests in flight": ("http_requests_in_flight",),
        "Shed requests": ("requests_shed_total",),
        "Memory": ("process_resident_memory_bytes", "memory_limit_bytes"),
    }
    for title, needles in wanted.items():
        assert title in by_title, title
        assert all(n in by_title[title] for n in needles), title
