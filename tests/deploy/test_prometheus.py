"""deploy/prometheus against Debian's promtool and a real Prometheus scraping the real service.

promtool checks the rules and the configuration and runs the rules' unit tests on synthetic
series; one test starts ``prometheus`` (private directory, loopback port, stopped by its PID)
against the service under uvicorn and evaluates every rule and every dashboard query on the
samples it scraped. The tools come from ``make prometheus-deps``; without them these tests skip,
except on CI (``CI`` set), where they fail.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from PIL import Image

from tests.deploy.observability import (
    ADMISSION_GROUP,
    JOB,
    PROMETHEUS,
    RULES,
    dashboard_exprs,
    exported_names,
    grafana_to_promql,
    metric_names,
    rule_exprs,
    rule_groups,
    unknown_names,
)
from tests.deploy.test_k8s import K8S, container, deployment
from tests.service.conftest import encode, make_client, make_settings, serve
from tests.service.modelgen import write_rgb_model

pytestmark = pytest.mark.tools


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed: run `make prometheus-deps` (Debian's prometheus package)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=PROMETHEUS, capture_output=True, text=True, timeout=120)


def test_promtool_accepts_the_rules() -> None:
    result = run(tool("promtool"), "check", "rules", RULES.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 16 rules found" in result.stdout


def test_rules_pass_their_unit_tests() -> None:
    result = run(tool("promtool"), "test", "rules", "rules_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_rule_unit_tests_fail_when_a_threshold_is_broken(tmp_path: Path) -> None:
    """The unit tests can fail: raise one threshold and the alert they expect goes missing."""
    shutil.copy(PROMETHEUS / "rules_test.yml", tmp_path)
    rules = RULES.read_text()
    assert "ratio_rate5m > 0.01  # TUNE" in rules
    (tmp_path / "rules.yml").write_text(rules.replace("ratio_rate5m > 0.01  # TUNE", "ratio_rate5m > 0.5  # TUNE"))
    result = subprocess.run(
        [tool("promtool"), "test", "rules", "rules_test.yml"], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode != 0 and "ClassifierHighErrorRatio" in result.stdout + result.stderr


def test_promtool_accepts_the_example_configuration() -> None:
    result = run(tool("promtool"), "check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_rule_selects_the_job_and_every_alert_is_documented() -> None:
    docs = (PROMETHEUS.parents[1] / "docs" / "operations.md").read_text()
    for group in rule_groups():
        for rule in group["rules"]:
            if {n for n in metric_names(rule["expr"]) if ":" not in n}:  # raw series, not recorded ones
                assert f'job="{JOB}"' in rule["expr"], rule
            if "alert" in rule:
                assert rule["labels"]["severity"] in {"page", "warning"}
                assert {"summary", "description"} <= set(rule["annotations"])
                assert f"### {rule['alert']}" in docs, f"docs/operations.md does not explain {rule['alert']}"


@pytest.fixture(scope="module")
def metrics_text(tmp_path_factory: pytest.TempPathFactory) -> str:
    """/metrics of the real app after the requests that create every labelled series."""
    model = write_rgb_model(tmp_path_factory.mktemp("obs") / "model.onnx")
    jpeg = encode(Image.new("RGB", (64, 48), (220, 30, 30)))
    with make_client(model) as client:
        assert client.post("/predict", files={"file": ("a.jpg", jpeg, "image/jpeg")}).status_code == 200
        assert client.post("/predict", content=b"not an image").status_code == 415
        files = [("files", ("a.jpg", jpeg, "image/jpeg")), ("files", ("b.jpg", jpeg, "image/jpeg"))]
        assert client.post("/predict/batch", files=files).status_code == 200
        return client.get("/metrics").text


def test_every_rule_names_metrics_the_service_exports(metrics_text: str) -> None:
    assert unknown_names(rule_exprs(), exported_names(metrics_text)) == {}


def test_every_dashboard_query_names_metrics_the_service_exports(metrics_text: str) -> None:
    assert unknown_names(dashboard_exprs(), exported_names(metrics_text)) == {}


def test_the_admission_rules_read_the_admission_metrics(metrics_text: str) -> None:
    """The shedding rules and panels name what the admission controller really exports."""
    admission = {"requests_shed_total", "admission_queue_depth", "admission_in_flight"}
    assert admission <= exported_names(metrics_text)
    group = {k: e for k, e in rule_exprs().items() if k.split("/")[0] == ADMISSION_GROUP}
    assert group and all(metric_names(e) & admission for e in group.values())


def kubernetes_job() -> dict[str, Any]:
    (job,) = yaml.safe_load((PROMETHEUS / "scrape-kubernetes.yml").read_text())["scrape_configs"]
    return job


def meta_label(kind: str, key: str) -> str:
    """How Kubernetes discovery names a pod label or annotation: prometheus.io/port -> ..._prometheus_io_port."""
    return f"__meta_kubernetes_pod_{kind}_" + re.sub(r"[^A-Za-z0-9_]", "_", key)


def pod_meta(port: str, scrape: str = "true") -> dict[str, str]:
    """The discovery labels Kubernetes gives a pod of deploy/k8s/deployment.yaml (on another port)."""
    template = deployment()["spec"]["template"]["metadata"]
    meta = {meta_label("label", k): v for k, v in template["labels"].items()}
    meta |= {meta_label("annotation", k): v for k, v in template["annotations"].items()}
    meta[meta_label("annotation", "prometheus.io/scrape")] = scrape
    meta[meta_label("annotation", "prometheus.io/port")] = port
    return meta | {"__meta_kubernetes_namespace": "default", "__meta_kubernetes_pod_name": "classifier-0"}


def test_pod_annotations_point_at_the_metrics_route_on_the_http_port() -> None:
    for path in (K8S / "deployment.yaml", K8S / "variants" / "deployment-s3-model.yaml"):
        dep = deployment(path)
        notes = dep["spec"]["template"]["metadata"]["annotations"]
        ports = {p["containerPort"] for p in container(dep)["ports"]}
        assert notes == {"prometheus.io/scrape": "true", "prometheus.io/port": "8000", "prometheus.io/path": "/metrics"}
        assert int(notes["prometheus.io/port"]) in ports
    assert dep["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] == JOB


# ---------------------------------------------------------------- a real Prometheus


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def prometheus(config: Path, workdir: Path) -> Iterator[str]:
    """Debian's prometheus on a loopback port with its data in ``workdir``; stopped by its PID."""
    port = free_port()
    log = (workdir / "prometheus.log").open("w")
    proc = subprocess.Popen(
        [
            tool("prometheus"),
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: proc.poll() is None and ok(f"{url}/-/ready"), 30, "prometheus ready")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()


def ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def wait_for(check: Callable[[], Any], seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.25)
    raise AssertionError(f"gave up waiting for {what} after {seconds:.0f} s")


def query(url: str, promql: str) -> list[dict[str, Any]]:
    body = httpx.get(f"{url}/api/v1/query", params={"query": promql}, timeout=10).json()
    assert body["status"] == "success", (promql, body)
    return body["data"]["result"]


@contextmanager
def traffic(url: str) -> Iterator[dict[int, int]]:
    """Requests in the background while Prometheus scrapes: good images, bad bytes, a batch."""
    statuses: dict[int, int] = {}
    stop = threading.Event()
    jpeg = encode(Image.new("RGB", (64, 48), (220, 30, 30)))

    def loop() -> None:
        with httpx.Client(base_url=url, timeout=10) as client:
            while not stop.is_set():
                for r in (
                    client.post("/predict", files={"file": ("a.jpg", jpeg, "image/jpeg")}),
                    client.post("/predict", content=b"%PDF-1.4 not an image"),
                    client.post("/predict/batch", files=[("files", ("a.jpg", jpeg)), ("files", ("b.jpg", jpeg))]),
                ):
                    statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                stop.wait(0.05)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield statuses
    finally:
        stop.set()
        thread.join(timeout=10)


def live_config(workdir: Path, service_port: int) -> Path:
    """The Kubernetes scrape job as shipped, fed by a file that stands in for the pod discovery,
    the rules as shipped but with a p99 target no real request meets, scraping every second."""
    job = kubernetes_job()
    assert job.pop("kubernetes_sd_configs") == [{"role": "pod"}]
    pods = [
        {"targets": ["127.0.0.1:9"], "labels": pod_meta(str(service_port))},
        {"targets": ["127.0.0.1:9"], "labels": pod_meta(str(service_port), scrape="false")},  # not annotated
    ]
    (workdir / "pods.yml").write_text(yaml.safe_dump(pods))
    job["file_sd_configs"] = [{"files": [str(workdir / "pods.yml")]}]
    job["scrape_interval"] = "1s"
    rules = RULES.read_text()
    target = 'label_replace(vector(1), "job"'
    assert target in rules
    (workdir / "rules.yml").write_text(rules.replace(target, 'label_replace(vector(0.000001), "job"'))
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(workdir / "rules.yml")],
        "scrape_configs": [job],
    }
    path = workdir / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.slow
def test_a_real_prometheus_scrapes_the_service_and_evaluates_rules_and_dashboard(tmp_path: Path) -> None:
    model = write_rgb_model(tmp_path / "model.onnx")
    with serve(make_settings(model)) as service, traffic(service) as statuses:
        config = live_config(tmp_path, int(service.rsplit(":", 1)[1]))
        with prometheus(config, tmp_path) as prom:
            targets = wait_for(lambda: live_targets(prom), 30, "the annotated pod to be scraped")
            assert [t["labels"]["job"] for t in targets["activeTargets"]] == [JOB]
            assert len(targets["droppedTargets"]) == 1  # the pod without prometheus.io/scrape: "true"

            # Rates need two scrapes after traffic started; the recording rules then have values.
            wait_for(lambda: query(prom, "instance:inference_busy:ratio_rate5m"), 30, "the recording rules")
            check_rules_evaluate(prom)
            check_recorded_values(prom)
            pending = wait_for(lambda: alerts(prom, "ClassifierLatencyHigh"), 30, "the latency alert to go pending")
            assert pending[0]["state"] == "pending" and pending[0]["labels"]["severity"] == "warning"

            # Every name is one Prometheus scraped, or one the service declares but has no sample of yet.
            names = set(httpx.get(f"{prom}/api/v1/label/__name__/values", timeout=10).json()["data"])
            text = httpx.get(f"{service}/metrics", timeout=10).text
            names |= exported_names(text) - exported_names(text, declared=False)
            assert unknown_names(dashboard_exprs(), names) == {}
            assert unknown_names(rule_exprs(), names) == {}
            check_dashboard_queries(prom)
    assert statuses.get(200, 0) > 0 and statuses.get(415, 0) > 0 and set(statuses) == {200, 415}


def live_targets(prom: str) -> dict[str, Any] | None:
    data = httpx.get(f"{prom}/api/v1/targets", params={"state": "any"}, timeout=5).json()["data"]
    up = [t for t in data["activeTargets"] if t["health"] == "up"]
    return data if up else None


def check_rules_evaluate(prom: str) -> None:
    """Every group loaded, every rule evaluated on the scraped samples without an error."""
    groups = httpx.get(f"{prom}/api/v1/rules", timeout=5).json()["data"]["groups"]
    assert sorted(g["name"] for g in groups) == sorted(g["name"] for g in rule_groups())
    never = "0001-01-01"  # Prometheus's lastEvaluation of a rule not evaluated yet
    wait_for(lambda: all(never not in r["lastEvaluation"] for g in rules(prom) for r in g["rules"]), 15, "rules")
    bad = [(r["name"], r.get("lastError")) for g in rules(prom) for r in g["rules"] if r["health"] != "ok"]
    assert bad == []


def rules(prom: str) -> list[dict[str, Any]]:
    return httpx.get(f"{prom}/api/v1/rules", timeout=5).json()["data"]["groups"]


def alerts(prom: str, name: str) -> list[dict[str, Any]]:
    found = httpx.get(f"{prom}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
    return [a for a in found if a["labels"]["alertname"] == name]


def value(prom: str, promql: str) -> float:
    (sample,) = query(prom, promql)
    return float(sample["value"][1])


def check_recorded_values(prom: str) -> None:
    assert value(prom, "job:predict_errors:ratio_rate5m") == 0  # 415s are the client's, not errors
    p99 = value(prom, "job:predict_latency_seconds:p99_5m")
    assert 0 < p99 < 10
    assert value(prom, "job:predict_latency_seconds:p99_target") == 0.000001
    assert 0 < value(prom, "instance:inference_busy:ratio_rate5m") < 1
    assert 0 <= value(prom, "instance:memory_used:ratio") < 1
    assert math.isfinite(value(prom, "instance:predict_queue_seconds:p95_5m"))
    statuses = {r["metric"]["status"] for r in query(prom, 'job_route_status:http_requests:rate5m{route="/predict"}')}
    assert statuses == {"200", "415"}


def check_dashboard_queries(prom: str) -> None:
    """Every panel's query is valid PromQL; those over exported metrics return series."""
    for where, expr in dashboard_exprs().items():
        result = query(prom, grafana_to_promql(expr))
        if not metric_names(expr) & {"requests_shed_total"}:  # nothing shed in this short run: no series
            assert result, f"{where} returned nothing: {expr}"
