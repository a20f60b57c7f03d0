"""deploy/k8s against the Kubernetes v1.34 JSON schemas (strict: unknown fields fail), and the
links between the manifests that a schema cannot see (probes, labels, ports, threads)."""

from __future__ import annotations

import copy
import json
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from referencing import Registry, Resource

from tests.deploy.dockerfile import ROOT, stages

K8S = ROOT / "deploy" / "k8s"
SCHEMAS = Path(__file__).parent / "schemas" / "v1.34.0-local-strict"
MANIFESTS = sorted(K8S.rglob("*.yaml"))


def schema_name(doc: dict[str, Any]) -> str:
    """kind + group + version, as the schema files are named: deployment-apps-v1.json, service-v1.json."""
    group, _, version = doc["apiVersion"].rpartition("/")
    parts = [doc["kind"].lower(), group.split(".")[0], version]
    return "-".join(p for p in parts if p) + ".json"


@cache
def registry() -> Registry:
    definitions = json.loads((SCHEMAS / "_definitions.json").read_text())
    return Registry().with_resource(definitions["$id"], Resource.from_contents(definitions))


def errors(doc: dict[str, Any]) -> list[str]:
    schema = json.loads((SCHEMAS / schema_name(doc)).read_text())
    validator = jsonschema.Draft202012Validator(schema, registry=registry())
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]


def load(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def by_kind(path: Path) -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in load(path)}


def deployment(path: Path = K8S / "deployment.yaml") -> dict[str, Any]:
    return by_kind(path)["Deployment"]


def container(dep: dict[str, Any]) -> dict[str, Any]:
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    return c


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.relative_to(K8S).as_posix())
def test_manifest_matches_the_kubernetes_schema(path: Path) -> None:
    docs = load(path)
    assert docs
    for doc in docs:
        assert errors(doc) == [], f"{path.name} {doc['kind']}"


@pytest.mark.parametrize("model_s3", ["", "s3://my-models/animals10/v1/model.onnx"])
def test_apply_sh_renders_valid_manifests_with_image_and_model(model_s3: str) -> None:
    image = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/image-classifier:v1"
    env = {"PATH": "/usr/bin:/bin", "IMAGE": image, "MODEL_S3": model_s3, "DRY_RUN": "1"}
    out = subprocess.run(
        ["bash", "deploy/k8s/apply.sh"], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    assert sorted(d["kind"] for d in docs) == [
        "Deployment",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "Service",
    ]
    for doc in docs:
        assert errors(doc) == []
    dep = next(d for d in docs if d["kind"] == "Deployment")
    assert container(dep)["image"] == image
    inits = dep["spec"]["template"]["spec"].get("initContainers", [])
    assert [model_s3 in i["args"] for i in inits] == ([True] if model_s3 else [])


@pytest.mark.parametrize(
    ("mutate", "what"),
    [
        (lambda d: d["spec"].update(replica=3), "a misspelt field"),
        (lambda d: container(d).update(livenessprobe=container(d).pop("livenessProbe")), "a field in the wrong case"),
        (lambda d: container(d)["ports"][0].update(containerPort="8000"), "a string where an integer belongs"),
        (lambda d: container(d).pop("name"), "a required field removed"),
        (lambda d: d["spec"]["template"]["spec"].update(containers={"name": "x"}), "an object where a list belongs"),
    ],
)
def test_schema_check_catches_broken_manifests(mutate: Any, what: str) -> None:
    broken = copy.deepcopy(deployment())
    mutate(broken)
    assert errors(broken), f"the schema check missed {what}"


def test_probes_hit_the_service_health_routes_on_the_declared_port() -> None:
    c = container(deployment())
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"http": 8000}  # the service's default PORT
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert c[probe]["httpGet"]["port"] in ports


def test_onnxruntime_threads_follow_the_cpu_limit() -> None:
    c = container(deployment())
    env = {e["name"]: e for e in c["env"]}
    ref = env["CPUS"]["valueFrom"]["resourceFieldRef"]  # what the service sizes its instances for
    assert (ref["containerName"], ref["resource"]) == (c["name"], "limits.cpu")
    # requests == limits: the pod gets the CPUs its threads assume.
    assert c["resources"]["requests"]["cpu"] == c["resources"]["limits"]["cpu"]


def test_pods_run_as_the_image_user_without_root() -> None:
    pod = deployment()["spec"]["template"]["spec"]
    image_uid = stages(ROOT / "Dockerfile.serve")[-1].all("USER")[-1].args.split(":")[0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert str(pod["securityContext"]["runAsUser"]) == image_uid
    assert container(deployment())["securityContext"]["readOnlyRootFilesystem"] is True


def test_service_hpa_and_pdb_point_at_the_deployment() -> None:
    dep = deployment()
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert dep["spec"]["selector"]["matchLabels"].items() <= labels.items()
    svc = by_kind(K8S / "service.yaml")["Service"]
    assert svc["spec"]["selector"].items() <= labels.items()
    assert {p["targetPort"] for p in svc["spec"]["ports"]} <= {p["name"] for p in container(dep)["ports"]}
    target = by_kind(K8S / "hpa.yaml")["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", dep["metadata"]["name"])
    pdb = by_kind(K8S / "pdb.yaml")["PodDisruptionBudget"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_s3_variant_differs_from_the_baked_deployment_only_in_where_the_model_comes_from() -> None:
    base, variant = deployment(), deployment(K8S / "variants" / "deployment-s3-model.yaml")
    vpod, bpod = variant["spec"]["template"]["spec"], base["spec"]["template"]["spec"]
    (init,) = vpod.pop("initContainers")
    assert init["args"][-1] == "/models/model.onnx"
    assert vpod.pop("serviceAccountName") == "image-classifier"
    assert bpod.pop("automountServiceAccountToken") is False
    assert vpod.pop("volumes") == [{"name": "models", "emptyDir": {"sizeLimit": "1Gi"}}, *bpod.pop("volumes")]
    vc, bc = container(variant), container(base)
    assert vc.pop("env") == [{"name": "MODEL_PATH", "value": "/models/model.onnx"}, *bc.pop("env")]
    models_mount = {"name": "models", "mountPath": "/models", "readOnly": True}
    assert vc.pop("volumeMounts") == [*bc.pop("volumeMounts"), models_mount]
    assert variant == base


def test_resources_are_sized_from_the_service_settings() -> None:
    """Memory limit >= budget + a baseline; drain + shutdown inside the grace period; nothing spools to /tmp."""
    units = {"Ki": 1024, "Mi": 1024**2, "Gi": 1024**3}

    def size(text: str) -> int:
        return int(text[:-2]) * units[text[-2:]] if text[-2:] in units else int(text)

    for path in (K8S / "deployment.yaml", K8S / "variants" / "deployment-s3-model.yaml"):
        dep = deployment(path)
        c = container(dep)
        env = {e["name"]: e.get("value") for e in c["env"]}
        budget, limit = int(env["MEMORY_BUDGET_BYTES"]), size(c["resources"]["limits"]["memory"])
        assert budget + 512 * 1024**2 <= limit, "the budget leaves no room for the model and the runtime"
        grace = dep["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert float(env["DRAIN_SECONDS"]) + float(env["SHUTDOWN_TIMEOUT_S"]) + 5 <= grace
        assert "lifecycle" not in c  # the service drains itself; no preStop sleep to add on top
        tmp = next(v for v in dep["spec"]["template"]["spec"]["volumes"] if v["name"] == "tmp")
        assert size(tmp["emptyDir"]["sizeLimit"]) <= 64 * 1024**2
