"""Monitoring objects of an endpoint: a PodMonitor, a PrometheusRule and a Grafana dashboard ConfigMap,
built with real Kustomize, valid against the Prometheus Operator's CRDs, opted out per environment,
thresholds from the deployment file; the rules pass `promtool check rules` and `promtool test rules`
(tests/render/prometheus_rules_test.yaml: series in, expected alerts out)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml
from render.render_helpers import Repo, run
from render.test_verify import CRDS, _need_kustomize
from support import require

from gitops_ml.adapters import kustomize

RULES_TEST = Path(__file__).with_name("prometheus_rules_test.yaml")
PROD = "deployments/prod/iris.yaml"


def _build(repo: Repo, environment: str, model: str = "iris") -> dict[tuple[str, str], dict[str, Any]]:
    built = kustomize.build(kustomize.find_kustomize(), repo.path / "deploy" / "apps" / environment / model)
    return {(obj["kind"], obj["metadata"]["name"]): obj for obj in built}


def _render(repo: Repo) -> None:
    result = run("render", repo.path)
    assert result.exit_code == 0, result.stderr


def _rules(objects: dict[tuple[str, str], dict[str, Any]]) -> dict[str, dict[str, Any]]:
    groups = objects[("PrometheusRule", "iris")]["spec"]["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"]}


def _promtool() -> str:
    promtool = shutil.which("promtool")
    require(promtool is not None, "promtool (Debian's prometheus package) is not installed")
    assert promtool is not None
    return promtool


@pytest.mark.kustomize
def test_each_endpoint_gets_a_pod_monitor_rules_and_a_dashboard_valid_against_the_crds(
    example_repo: Callable[[], Repo],
) -> None:
    _need_kustomize()
    require(CRDS.is_dir(), f"the reference CRDs are not at {CRDS}")
    repo = example_repo()
    result = run("render", repo.path, "--verify", "--crds", str(CRDS))
    assert result.exit_code == 0, result.stdout + result.stderr
    objects = _build(repo, "prod")

    monitor = objects[("PodMonitor", "iris")]
    assert monitor["metadata"]["namespace"] == "ml-prod"
    # every pod of the endpoint, whichever Deployment runs it; the port the server listens on
    assert monitor["spec"]["selector"]["matchExpressions"] == [
        {"key": "app.kubernetes.io/name", "operator": "In", "values": ["iris", "iris-canary", "iris-shadow"]}
    ]
    endpoint = monitor["spec"]["podMetricsEndpoints"][0]
    assert (endpoint["port"], endpoint["path"]) == ("http", "/metrics")
    pod = objects[("Deployment", "iris")]["spec"]["template"]
    assert pod["metadata"]["labels"]["app.kubernetes.io/name"] == "iris"
    assert [p["name"] for p in pod["spec"]["containers"][0]["ports"]] == ["http"]

    rules = _rules(objects)
    assert sorted(rules) == sorted(
        [
            "GitopsMlErrorRatioHigh",
            "GitopsMlLatencyP99High",
            "GitopsMlRequestsRejected",
            "GitopsMlReplicasNotReady",
            "GitopsMlEndpointNotReady",
            "GitopsMlCaptureDropped",  # prod iris captures (to the pod's volume: no upload alerts)
        ]
    )
    for rule in rules.values():
        assert rule["labels"]["severity"] in {"critical", "warning"}
        assert {"model": "iris", "environment": "prod", "namespace": "ml-prod"}.items() <= rule["labels"].items()
        assert "iris" in rule["annotations"]["summary"] and "prod" in rule["annotations"]["summary"]
    # the request timeout of prod iris is 2 s: the p99 alert fires at 80 % of it
    assert rules["GitopsMlLatencyP99High"]["expr"].endswith(" > 1.6")
    assert rules["GitopsMlErrorRatioHigh"]["expr"].endswith(" > 0.01")

    dashboard = objects[("ConfigMap", "iris-dashboard")]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    board = json.loads(dashboard["data"]["iris.json"])
    assert board["templating"]["list"][0]["type"] == "datasource"
    titles = [panel["title"] for panel in board["panels"]]
    assert any("Latency" in t for t in titles) and any("Capture" in t for t in titles) and "Replicas" in titles
    assert {panel["datasource"]["uid"] for panel in board["panels"]} == {"${datasource}"}

    # Prometheus (namespace monitoring by default) may reach the metrics port
    policy = objects[("NetworkPolicy", "iris")]["spec"]["ingress"]
    assert {
        "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
        "ports": [{"port": "http", "protocol": "TCP"}],
    } in policy


@pytest.mark.kustomize
def test_an_environment_opts_out_of_monitoring_or_of_the_dashboard(example_repo: Callable[[], Repo]) -> None:
    _need_kustomize()
    repo = example_repo()
    repo.edit(
        "gitops-ml.yaml", "    namespace: ml-staging\n", "    namespace: ml-staging\n    monitoring: {enabled: false}\n"
    )
    repo.edit(
        "gitops-ml.yaml",
        "    namespace: ml-prod\n",
        "    namespace: ml-prod\n    monitoring:\n      dashboard: false\n      labels: {release: kube-prometheus-stack}\n"
        "      prometheusNamespace: observability\n      runbookUrl: https://runbooks.example.com/gitops-ml\n",
    )
    _render(repo)
    staging = _build(repo, "staging")
    kinds = {kind for kind, _ in staging}
    assert not kinds & {"PodMonitor", "PrometheusRule"}
    assert ("ConfigMap", "iris-dashboard") not in staging
    assert not (repo.path / "deploy/apps/staging/iris/dashboard.json").exists()
    assert len(staging[("NetworkPolicy", "iris")]["spec"]["ingress"]) == 1

    prod = _build(repo, "prod")
    assert prod[("PodMonitor", "iris")]["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert prod[("PrometheusRule", "iris")]["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert ("ConfigMap", "iris-dashboard") not in prod
    assert (
        _rules(prod)["GitopsMlErrorRatioHigh"]["annotations"]["runbook_url"]
        == "https://runbooks.example.com/gitops-ml#gitopsmlerrorratiohigh"
    )
    peers = [rule["from"] for rule in prod[("NetworkPolicy", "iris")]["spec"]["ingress"]]
    assert [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "observability"}}}] in peers


@pytest.mark.kustomize
def test_thresholds_come_from_the_deployment_file(example_repo: Callable[[], Repo]) -> None:
    _need_kustomize()
    repo = example_repo()
    with (repo.path / PROD).open("a") as f:
        f.write("monitoring:\n  alerts: {errorRatio: 0.02, latencyP99Seconds: 0.75, rejectedRatio: 0.05, for: 10m}\n")
    repo.edit(PROD, "    sampling: 0.05\n", "    sampling: 0.05\n    sink: {uri: s3://ml-captures/prod}\n")
    _render(repo)
    rules = _rules(_build(repo, "prod"))
    assert rules["GitopsMlErrorRatioHigh"]["expr"].endswith(" > 0.02")
    assert rules["GitopsMlLatencyP99High"]["expr"].endswith(" > 0.75")
    assert rules["GitopsMlRequestsRejected"]["expr"].endswith(" > 0.05")
    assert {
        rules[name]["for"] for name in ("GitopsMlErrorRatioHigh", "GitopsMlLatencyP99High", "GitopsMlRequestsRejected")
    } == {"10m"}
    # a sink adds the upload alerts, naming the bucket
    assert "s3://ml-captures/prod" in rules["GitopsMlCaptureUploadFailing"]["annotations"]["summary"]
    assert "GitopsMlCaptureUploadDropped" in rules


def test_a_bad_threshold_is_a_located_error(example_repo: Callable[[], Repo]) -> None:
    repo = example_repo()
    with (repo.path / PROD).open("a") as f:
        f.write("monitoring:\n  alerts: {errorRatio: 2, for: soon}\n")
    result = run("render", repo.path)
    assert result.exit_code == 1
    assert f"error: {PROD}:43:24: monitoring.alerts.errorRatio: 2 is out of range (maximum 1)" in result.stderr
    assert f"error: {PROD}:43:32: monitoring.alerts.for: 'soon' is not valid" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.kustomize
def test_rules_pass_promtool_check_and_its_unit_tests(example_repo: Callable[[], Repo], tmp_path: Path) -> None:
    _need_kustomize()
    promtool = _promtool()
    repo = example_repo()
    _render(repo)
    spec = _build(repo, "prod")[("PrometheusRule", "iris")]["spec"]
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(spec, sort_keys=False))
    count = sum(len(group["rules"]) for group in spec["groups"])
    check = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"SUCCESS: {count} rules found" in check.stdout
    shutil.copy(RULES_TEST, tmp_path / RULES_TEST.name)
    test = subprocess.run(
        [promtool, "test", "rules", str(tmp_path / RULES_TEST.name)], capture_output=True, text=True, check=False
    )
    assert test.returncode == 0, test.stdout + test.stderr
    assert "SUCCESS" in test.stdout


@pytest.mark.kustomize
def test_the_app_project_allows_every_kind_an_overlay_renders(example_repo: Callable[[], Repo]) -> None:
    # Argo CD refuses to sync a kind its AppProject does not list: the monitoring objects included
    _need_kustomize()
    repo = example_repo()
    _render(repo)
    for environment in ("prod", "staging"):
        project = yaml.safe_load((repo.path / "deploy" / "clusters" / environment / "appproject.yaml").read_text())
        allowed = {(kind["group"], kind["kind"]) for kind in project["spec"]["namespaceResourceWhitelist"]}
        for model in ("iris", "digits"):
            for obj in _build(repo, environment, model).values():
                group = obj["apiVersion"].rpartition("/")[0]
                assert (group, obj["kind"]) in allowed, f"{environment}/{model}: {obj['kind']} is not in the AppProject"
