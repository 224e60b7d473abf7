"""Rendered candidates: a canary and a shadow behind the endpoint's one HTTPRoute (Gateway API), or a
Rollout with canary steps and an AnalysisTemplate (Argo Rollouts); KEDA for concurrency; TLS. Built
with real Kustomize and checked against the reference CRDs, because that is what the controllers read."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml
from render.render_helpers import Repo, run
from support import reference_crds, require

from gitops_ml.adapters import kustomize

# beside the project (../shared), or where GITOPS_ML_CRDS says (a worktree elsewhere)
CRDS = Path(os.environ["GITOPS_ML_CRDS"]) if os.environ.get("GITOPS_ML_CRDS") else reference_crds()
PROD = "deployments/prod/iris.yaml"
OUTPUT = "sample: sample.json\noutput:\n  kind: class\n  field: predictions\n  classes: [0, 1, 2]\n"


@pytest.fixture
def two_versions(example_repo: Callable[[], Repo]) -> Repo:
    """The example with iris 1.0.0 and 1.1.0 in git history (both declare their output); prod runs 1.0.0."""
    repo = example_repo()
    repo.edit("models/iris/manifest.yaml", "sample: sample.json\n", OUTPUT)
    repo.commit("iris 1.0.0 declares its output")
    repo.edit("models/iris/model.yaml", "version: 1.0.0", "version: 1.1.0")
    repo.edit("models/iris/model.yaml", "runId: train-iris-001", "runId: train-iris-002")
    repo.commit("iris 1.1.0")
    return repo


def _canary(repo: Repo, weight: int, *, shadow: bool = True, controller: str = "") -> None:
    text = repo.read(PROD)
    start = text.index("model: iris@1.0.0\n") + len("model: iris@1.0.0\n")
    end = text.index("autoscaling:")
    block = f"rollout:\n  canary: {{model: iris@1.1.0, weight: {weight}}}\n"
    if shadow:
        block += "  shadow: {model: iris@1.1.0}\n"
    if controller:
        block += f"  controller: {controller}\n"
    (repo.path / PROD).write_text(text[:start] + block + text[end:])


def _objects(overlay: Path) -> dict[tuple[str, str], dict[str, Any]]:
    built = kustomize.build(kustomize.find_kustomize(), overlay)
    return {(obj["kind"], obj["metadata"]["name"]): obj for obj in built}


def _render(repo: Repo) -> Path:
    result = run("render", repo.path)
    assert result.exit_code == 0, result.stderr
    return repo.path / "deploy" / "apps" / "prod" / "iris"


def _need_kustomize() -> None:
    require(bool(shutil.which("kustomize") or shutil.which("kubectl")), "kustomize or kubectl is not installed")


@pytest.mark.kustomize
@pytest.mark.parametrize("weight", [10, 50])
def test_gateway_api_canary_and_shadow_behind_one_route(two_versions: Repo, weight: int) -> None:
    _need_kustomize()
    _canary(two_versions, weight)
    objects = _objects(_render(two_versions))
    route = objects[("HTTPRoute", "iris")]["spec"]["rules"][0]
    assert route["backendRefs"] == [
        {"name": "iris", "port": 80, "weight": 100 - weight},
        {"name": "iris-canary", "port": 80, "weight": weight},
    ]
    assert route["filters"] == [
        {"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "iris-shadow", "port": 80}}}
    ]
    stable, canary, shadow = (objects[("Deployment", n)] for n in ("iris", "iris-canary", "iris-shadow"))
    images = [d["spec"]["template"]["spec"]["containers"][0]["image"] for d in (stable, canary, shadow)]
    assert images[0].startswith("registry.example.com/ml/iris:1.0.0-")
    assert images[1] == images[2] and images[1].startswith("registry.example.com/ml/iris:1.1.0-")
    # the endpoint's Service, host and keys do not move; candidates' pods are never the stable Service's
    assert objects[("Service", "iris")]["spec"]["selector"] == {"app.kubernetes.io/name": "iris"}
    assert objects[("Service", "iris-canary")]["spec"]["selector"] == {"app.kubernetes.io/name": "iris-canary"}
    assert canary["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] == "iris-canary"
    assert objects[("PodDisruptionBudget", "iris")]["spec"]["selector"] == {
        "matchLabels": {"app.kubernetes.io/name": "iris"}
    }

    def volumes(dep: dict[str, Any]) -> dict[str, Any]:
        return {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}

    for dep in (canary, shadow):
        assert (
            volumes(dep)["keys"]
            == volumes(stable)["keys"]
            == {"name": "keys", "secret": {"secretName": "iris-keys", "defaultMode": 0o440}}
        )
    # a candidate's settings say what it is: its version and track label every metric it exports
    settings = {
        o["metadata"]["name"].rsplit("-", 1)[0]: o["data"] for (kind, _), o in objects.items() if kind == "ConfigMap"
    }
    assert (
        settings["iris-settings"]["GITOPS_ML_MODEL_VERSION"] == "1.0.0"
        and settings["iris-settings"]["GITOPS_ML_TRACK"] == ""
    )
    assert (
        settings["iris-canary-settings"]["GITOPS_ML_TRACK"] == "canary"
        and settings["iris-canary-settings"]["GITOPS_ML_MODEL_VERSION"] == "1.1.0"
    )
    assert settings["iris-shadow-settings"]["GITOPS_ML_TRACK"] == "shadow"
    assert '"kind":"class"' in settings["iris-canary-settings"]["GITOPS_ML_PREDICTION_METRICS"]

    # the candidate's pods are the stable's but for names, image, version and settings
    def comparable(dep: dict[str, Any]) -> dict[str, Any]:
        spec = yaml.safe_load(yaml.safe_dump(dep["spec"]["template"]["spec"]))
        spec["containers"][0].pop("image")
        spec["containers"][0].pop("envFrom")
        # Kubernetes merges named lists by name: their order is not part of the pod
        spec["volumes"] = sorted(spec["volumes"], key=lambda v: v["name"])
        spec["containers"][0]["volumeMounts"] = sorted(spec["containers"][0]["volumeMounts"], key=lambda v: v["name"])
        return spec

    assert comparable(canary) == comparable(stable)


def test_adding_a_canary_leaves_the_stable_files_alone(two_versions: Repo) -> None:
    overlay = _render(two_versions)
    before = {p.name: p.read_bytes() for p in overlay.iterdir()}
    _canary(two_versions, 10)
    _render(two_versions)
    after = {p.name: p.read_bytes() for p in overlay.iterdir()}
    for name in ("deployment-patch.yaml", "hpa.yaml", "pdb.yaml", "networkpolicy.yaml", "externalsecret.yaml"):
        assert after[name] == before[name], name
    stable_settings = before["kustomization.yaml"].split(b"  name: iris-settings")[0]
    assert after["kustomization.yaml"].startswith(stable_settings), (
        "the stable ConfigMap (and so its pods) does not change"
    )
    assert sorted(set(after) - set(before)) == [
        f"{t}-{k}.yaml" for t in ("canary", "shadow") for k in ("deployment", "hpa", "networkpolicy", "service")
    ]


def _argo(repo: Repo, prometheus: bool = True) -> None:
    extra = "    prometheus: http://prometheus.monitoring:9090\n" if prometheus else ""
    repo.edit(
        "gitops-ml.yaml",
        "  prod:\n    namespace: ml-prod\n",
        f"  prod:\n    namespace: ml-prod\n{extra}    rollout:\n      controller: argo-rollouts\n",
    )


@pytest.mark.kustomize
@pytest.mark.parametrize("weight, steps", [(10, [10, 50]), (50, [50])])
def test_argo_rollouts_canary_steps_and_analysis(two_versions: Repo, weight: int, steps: list[int]) -> None:
    _need_kustomize()
    _argo(two_versions)
    _canary(two_versions, weight)
    objects = _objects(_render(two_versions))
    assert ("Deployment", "iris") not in objects, "the Rollout replaces the Deployment"
    rollout = objects[("Rollout", "iris")]
    canary = rollout["spec"]["strategy"]["canary"]
    expected: list[dict[str, Any]] = []
    for w in steps:
        expected += [
            {"setWeight": w},
            {"pause": {"duration": "5m"}},
            {"analysis": {"templates": [{"templateName": "iris"}]}},
        ]
    assert canary["steps"] == expected
    assert (canary["stableService"], canary["canaryService"]) == ("iris", "iris-canary")
    assert canary["trafficRouting"] == {
        "plugins": {"argoproj-labs/gatewayAPI": {"httpRoute": "iris", "namespace": "ml-prod"}}
    }
    container = rollout["spec"]["template"]["spec"]["containers"][0]
    assert container["image"].startswith("registry.example.com/ml/iris:1.1.0-"), "the template runs the candidate"
    config_maps = {name for kind, name in objects if kind == "ConfigMap"}
    assert container["envFrom"][0]["configMapRef"]["name"] in config_maps
    assert sum(name.startswith("iris-settings-1.0.0-") for name in config_maps) == 1, (
        "the stable ReplicaSet's settings stay"
    )
    assert rollout["spec"]["template"]["metadata"]["labels"]["tier"] == "production"
    # the route starts all-stable; the controller moves the weights and Argo CD ignores them
    assert [ref.get("weight") for ref in objects[("HTTPRoute", "iris")]["spec"]["rules"][0]["backendRefs"]] == [100, 0]
    application = yaml.safe_load((two_versions.path / "deploy/clusters/prod/applications/iris.yaml").read_text())
    assert application["spec"]["ignoreDifferences"][0]["kind"] == "HTTPRoute"
    assert "RespectIgnoreDifferences=true" in application["spec"]["syncPolicy"]["syncOptions"]
    metrics = objects[("AnalysisTemplate", "iris")]["spec"]["metrics"]
    assert [m["name"] for m in metrics] == ["error-ratio", "p99-latency", "prediction-shift"]
    assert all(m["provider"]["prometheus"]["address"] == "http://prometheus.monitoring:9090" for m in metrics)
    assert metrics[0]["successCondition"] == "len(result) > 0 && !isNaN(result[0]) && result[0] <= 0.01"
    # the shadow stays a Deployment of its own, mirrored by the route
    assert ("Deployment", "iris-shadow") in objects
    assert objects[("HorizontalPodAutoscaler", "iris")]["spec"]["scaleTargetRef"]["kind"] == "Rollout"


def test_argo_rollouts_without_a_canary_has_no_steps_and_promotion_changes_nothing(two_versions: Repo) -> None:
    _argo(two_versions)
    _canary(two_versions, 10, shadow=False)
    overlay = _render(two_versions)
    with_canary = yaml.safe_load((overlay / "rollout.yaml").read_text())["spec"]["template"]
    # promotion: model moves to the candidate and the canary goes; the Rollout's template stays as it is
    text = two_versions.read(PROD)
    start, end = text.index("model: iris@1.0.0\n"), text.index("autoscaling:")
    (two_versions.path / PROD).write_text(text[:start] + "model: iris@1.1.0\n" + text[end:])
    _render(two_versions)
    promoted = yaml.safe_load((overlay / "rollout.yaml").read_text())
    assert promoted["spec"]["template"] == with_canary
    assert promoted["spec"]["strategy"]["canary"]["steps"] == []
    assert "canaryService" not in promoted["spec"]["strategy"]["canary"], "no canary, no canary Service to name"
    assert not (overlay / "canary-service.yaml").exists()
    assert not (overlay / "analysistemplate.yaml").exists()


@pytest.mark.kustomize
def test_everything_verifies_against_the_reference_crds(two_versions: Repo) -> None:
    _need_kustomize()
    require(CRDS.is_dir(), f"{CRDS} (reference CRDs) is missing")
    _canary(two_versions, 10)
    two_versions.edit(PROD, "  targetCPUUtilization: 60\n", "  metric: concurrency\n  targetConcurrency: 3\n")
    two_versions.edit(
        "gitops-ml.yaml",
        "  prod:\n    namespace: ml-prod\n",
        "  prod:\n    namespace: ml-prod\n    prometheus: http://prometheus.monitoring:9090\n",
    )
    two_versions.edit(PROD, "  type: httproute\n", "  type: httproute\n  tls: {listener: https}\n")
    two_versions.edit(
        "deployments/staging/iris.yaml",
        "  ingressClassName: nginx\n",
        "  ingressClassName: nginx\n  tls: {secretName: iris-staging-tls, issuer: letsencrypt}\n",
    )
    gateway = run("render", two_versions.path, "--verify", "--crds", str(CRDS))
    assert gateway.exit_code == 0, gateway.stderr
    assert "not schema-checked" not in gateway.stderr, gateway.stderr
    objects = _objects(two_versions.path / "deploy/apps/prod/iris")
    scaler = objects[("ScaledObject", "iris")]["spec"]
    trigger = scaler["triggers"][0]
    assert trigger["type"] == "prometheus" and trigger["metadata"]["threshold"] == "3"
    assert (
        trigger["metadata"]["query"]
        == 'sum(gitops_ml_in_flight{model="iris",environment="prod",track=""}) + sum(gitops_ml_queue_depth{model="iris",environment="prod",track=""})'
    )
    assert (scaler["minReplicaCount"], scaler["maxReplicaCount"]) == (3, 120)
    assert (
        objects[("ScaledObject", "iris-canary")]["spec"]["triggers"][0]["metadata"]["query"].count('track="canary"')
        == 2
    )
    assert not any(kind == "HorizontalPodAutoscaler" for kind, _ in objects), "KEDA makes the HPA"
    assert objects[("HTTPRoute", "iris")]["spec"]["parentRefs"][0]["sectionName"] == "https"
    ingress = _objects(two_versions.path / "deploy/apps/staging/iris")[("Ingress", "iris")]
    assert ingress["spec"]["tls"] == [{"hosts": ["iris.staging.ml.example.com"], "secretName": "iris-staging-tls"}]
    assert ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] == "letsencrypt"
    _argo(two_versions, prometheus=False)
    argo = run("render", two_versions.path, "--verify", "--crds", str(CRDS))
    assert argo.exit_code == 0, argo.stderr
    assert "not schema-checked" not in argo.stderr, argo.stderr


def test_a_candidate_missing_from_git_is_located_at_its_line(two_versions: Repo) -> None:
    _canary(two_versions, 10)
    two_versions.edit(PROD, "canary: {model: iris@1.1.0", "canary: {model: iris@1.0.5")
    result = run("render", two_versions.path)
    assert result.exit_code == 4
    assert (
        "deployments/prod/iris.yaml:7:19: version 1.0.5 of model 'iris' does not exist in git history" in result.stderr
    )
