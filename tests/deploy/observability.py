"""What the rules and the dashboard ask of Prometheus: their PromQL, the metric names in it, and the
names the real service exports. Shared by the promtool, dashboard and live-Prometheus tests."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.deploy.dockerfile import ROOT

PROMETHEUS = ROOT / "deploy" / "prometheus"
RULES = PROMETHEUS / "rules.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "image-classifier.json"
JOB = "image-classifier"

# Series Prometheus makes itself for every target.
PROMETHEUS_OWN = {"up"}
# The admission controller's metrics (requests_shed_total, admission_queue_depth, admission_in_flight)
# are exported now, so every check below holds them to the real /metrics like the others.
ADMISSION_GROUP = "image-classifier.admission"

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_COMMENTS = re.compile(r"#[^\n]*")
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_VARIABLES = re.compile(r"\$\{\w+\}|\$\w+")
_IDENT = re.compile(r"(?<![\w.])[A-Za-z_:][A-Za-z0-9_:]*")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects: identifiers that are not functions, keywords,
    label names (inside {...} or by/on (...)), strings, durations or Grafana variables."""
    text = _STRINGS.sub('""', expr)
    text = _VARIABLES.sub("1", _COMMENTS.sub(" ", text))
    text = _RANGES.sub(" ", _MATCHERS.sub(" ", text))
    text = _GROUPING.sub(" ", text)
    names = set()
    for m in _IDENT.finditer(text):
        if text[m.end() :].lstrip().startswith("(") or m.group().lower() in _KEYWORDS:
            continue  # a function or an aggregation, or an operator
        names.add(m.group())
    return names


def rule_groups() -> list[dict[str, Any]]:
    return yaml.safe_load(RULES.read_text())["groups"]


def recording_names() -> set[str]:
    return {r["record"] for g in rule_groups() for r in g["rules"] if "record" in r}


def rule_exprs() -> dict[str, str]:
    """``group/rule name`` -> expression."""
    return {f"{g['name']}/{r.get('record') or r['alert']}": r["expr"] for g in rule_groups() for r in g["rules"]}


@cache
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def panels() -> list[dict[str, Any]]:
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def dashboard_exprs() -> dict[str, str]:
    """``panel title/refId`` (or ``variable NAME``) -> PromQL, with Grafana's variables still in."""
    found = {f"{p['title']}/{t['refId']}": t["expr"] for p in panels() for t in p["targets"]}
    for var in dashboard()["templating"]["list"]:
        if var["type"] == "query":
            query = re.fullmatch(r"label_values\((?:(.*),\s*)?(\w+)\)", var["query"]["query"])
            assert query, var["query"]
            if query.group(1):
                found[f"variable {var['name']}"] = query.group(1)
    return found


_SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("_sum", "_count", ""),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
}


def exported_names(metrics_text: str, declared: bool = True) -> set[str]:
    """Series names in a /metrics answer: those with samples, and (``declared``) those a labelled
    metric declares before its first sample (``# TYPE requests_shed_total counter`` with no line under it)."""
    names = set()
    for family in text_string_to_metric_families(metrics_text):
        names |= {s.name for s in family.samples}
        if declared:
            names |= {family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",))}
    return names


def unknown_names(exprs: dict[str, str], exported: set[str]) -> dict[str, list[str]]:
    """Per expression, the metric names that are neither exported, recorded, nor Prometheus's own."""
    known = exported | recording_names() | PROMETHEUS_OWN
    return {k: sorted(metric_names(e) - known) for k, e in exprs.items() if metric_names(e) - known}


def grafana_to_promql(expr: str, rate_interval: str = "1m") -> str:
    """A dashboard query as Prometheus would receive it from Grafana for job and all instances."""
    return expr.replace("$__rate_interval", rate_interval).replace("$job", JOB).replace("$instance", ".*")


def read(path: Path) -> Any:
    return yaml.safe_load(path.read_text())
