"""Every rendered alert and dashboard query, evaluated by a real Prometheus (Debian's) that scrapes a real
`gitops-ml serve` of the example's iris with prod's deployment file, capture uploaded to a real S3
store (SeaweedFS); the scrape configuration is the rendered PodMonitor's, the rule file the rendered
PrometheusRule's. No expression errors, every series an expression names is exported, a healthy
endpoint raises no alert, and a stopped one raises the readiness alerts.

Waits poll a condition with a deadline; nothing sleeps for ordering.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest
import yaml
from prometheus_process import prometheus_process
from render.render_helpers import Repo, run
from render.test_verify import _need_kustomize

from gitops_ml.adapters import kustomize

DEADLINE = 90.0  # a loaded 2-core machine starts processes slowly
PROD = "deployments/prod/iris.yaml"
# a vector selector as the renderer writes them: a metric name and its braces
SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^{}]*\})")
FUNCTIONS = {"sum", "rate", "increase", "histogram_quantile", "count", "vector", "by", "on"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(condition: Callable[[], Any], what: str, logs: Callable[[], str] = lambda: "") -> Any:
    end = time.monotonic() + DEADLINE
    while True:
        try:
            value = condition()
        except (httpx.HTTPError, OSError, ValueError):
            value = None
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {DEADLINE:g} s waiting for {what}\n{logs()}")
        time.sleep(0.2)  # polling interval of a wait with a deadline, not an ordering sleep


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


class Prometheus:
    def __init__(self, url: str, log: Path) -> None:
        self.url, self.log = url, log

    def api(self, path: str, **params: str) -> Any:
        body = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10).json()
        assert body["status"] == "success", body
        return body["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        return list(self.api("query", query=promql)["result"])

    def logs(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def rendered(
    example_repo: Callable[[], Repo], s3_store: Any
) -> tuple[Repo, dict[tuple[str, str], dict[str, Any]], str]:
    """The example with prod iris uploading its captures to a bucket of the test store, rendered and built."""
    _need_kustomize()
    bucket = s3_store.new_bucket()
    repo = example_repo()
    repo.edit(
        PROD,
        "    sampling: 0.05\n",
        f"    sampling: 1\n    sink: {{uri: 's3://{bucket}/captures', endpoint: '{s3_store.endpoint}'}}\n",
    )
    result = run("render", repo.path)
    assert result.exit_code == 0, result.stderr
    built = kustomize.build(kustomize.find_kustomize(), repo.path / "deploy" / "apps" / "prod" / "iris")
    return repo, {(obj["kind"], obj["metadata"]["name"]): obj for obj in built}, bucket


@pytest.fixture
def served(
    rendered: tuple[Repo, Any, str], s3_store: Any, tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    """`gitops-ml serve models/iris --env prod`: the server the rendered ConfigMap configures."""
    repo = rendered[0]
    port = free_port()
    log = tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITOPS_ML_", "AWS_"))}
    env.update(s3_store.env())
    argv = [
        sys.executable,
        "-m",
        "gitops_ml",
        "serve",
        str(repo.path / "models" / "iris"),
        "--env",
        "prod",
        "--port",
        str(port),
        "--capture-dir",
        str(tmp_path / "capture"),
        "--env-manager",
        "local",  # this Python has the model's dependencies; the test is about metrics, not environments
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: process.poll() is not None or httpx.get(f"{url}/readyz", timeout=5).status_code == 200,
            "gitops-ml serve to be ready",
            log.read_text,
        )
        assert process.poll() is None, log.read_text()
        yield process, url, log
    finally:
        _stop(process)


@pytest.fixture
def prometheus(
    rendered: tuple[Repo, dict[tuple[str, str], dict[str, Any]], str], served: tuple[Any, str, Path], tmp_path: Path
) -> Iterator[Prometheus]:
    """Debian's prometheus scraping the server as the rendered PodMonitor says, with the rendered rules."""
    objects = rendered[1]
    monitor = objects[("PodMonitor", "iris")]
    endpoint = monitor["spec"]["podMetricsEndpoints"][0]
    job = next(r["replacement"] for r in endpoint["relabelings"] if r["targetLabel"] == "job")
    home = tmp_path / "prometheus"
    home.mkdir()
    rules = home / "rules.yaml"
    rules.write_text(yaml.safe_dump(objects[("PrometheusRule", "iris")]["spec"], sort_keys=False))
    # the target labels the operator gives a PodMonitor's target: namespace and pod, and the job it sets
    target = {
        "targets": [served[1].removeprefix("http://")],
        "labels": {"namespace": monitor["metadata"]["namespace"], "pod": "iris-0"},
    }
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules)],
        "scrape_configs": [{"job_name": job, "metrics_path": endpoint["path"], "static_configs": [target]}],
    }
    (home / "prometheus.yml").write_text(yaml.safe_dump(config))
    with prometheus_process(home, home / "prometheus.yml") as (url, _process, log):
        yield Prometheus(url, log)


def _expressions(objects: dict[tuple[str, str], dict[str, Any]]) -> tuple[dict[str, str], dict[str, str]]:
    """(alert -> expr, dashboard panel/target -> expr with Grafana's rate interval filled in)."""
    rules = {
        rule["alert"]: rule["expr"]
        for group in objects[("PrometheusRule", "iris")]["spec"]["groups"]
        for rule in group["rules"]
    }
    board = json.loads(objects[("ConfigMap", "iris-dashboard")]["data"]["iris.json"])
    panels = {
        f"{panel['title']} / {target['refId']}": target["expr"].replace("$__rate_interval", "1m")
        for panel in board["panels"]
        for target in panel["targets"]
    }
    return rules, panels


@pytest.mark.slow
@pytest.mark.kustomize
def test_every_rule_and_panel_query_runs_on_what_the_server_exports(
    rendered: tuple[Repo, dict[tuple[str, str], dict[str, Any]], str],
    served: tuple[Any, str, Path],
    prometheus: Prometheus,
) -> None:
    objects = rendered[1]
    process, url, serve_log = served
    rules, panels = _expressions(objects)
    # prod iris captures and uploads: the capture alerts are rendered, and evaluated like the others
    assert {"GitopsMlCaptureDropped", "GitopsMlCaptureUploadFailing", "GitopsMlCaptureUploadDropped"} <= set(rules)

    sample = json.loads((rendered[0].path / "models" / "iris" / "sample.json").read_text())
    for _ in range(5):
        answer = httpx.post(f"{url}/score", json=sample, timeout=30)
        assert answer.status_code == 200, answer.text
    scored = 'sum(gitops_ml_requests_total{model="iris",environment="prod",route="score",status="200"})'
    wait_until(
        lambda: (v := prometheus.query(scored)) and float(v[0]["value"][1]) >= 5,
        "the scrape of 5 answered requests",
        prometheus.logs,
    )

    # Prometheus evaluated every rendered rule, with no error
    def evaluated() -> list[dict[str, Any]] | None:
        found = [rule for group in prometheus.api("rules")["groups"] for rule in group["rules"]]
        return found if found and all(not r["lastEvaluation"].startswith("0001") for r in found) else None

    loaded = wait_until(evaluated, "every rule to be evaluated", prometheus.logs)
    assert sorted(r["name"] for r in loaded) == sorted(rules)
    assert [(r["name"], r.get("lastError")) for r in loaded if r["health"] != "ok"] == []

    exported = set(prometheus.api("label/__name__/values"))
    for where, expr in {**rules, **panels}.items():
        prometheus.query(expr)  # no error (api() asserts success)
        selectors = SELECTOR.findall(expr)
        assert selectors, f"{where}: no series named in {expr}"
        for name, labels in selectors:
            assert name not in FUNCTIONS, f"{where}: {name}{labels}"
            assert name in exported, (
                f"{where}: {name} is not exported by gitops-ml serve (exported: {sorted(n for n in exported if n.startswith('gitops_ml'))})"
            )
            # the labels too: each selector finds the server's series, as the PodMonitor's scrape labels them
            assert prometheus.query(f"count({name}{labels})"), f"{where}: {name}{labels} matches no series"

    # a healthy endpoint raises nothing, not even a pending alert
    assert prometheus.api("alerts")["alerts"] == []

    # the server stops: its scrape fails and its series go stale; the readiness alerts become pending
    process.send_signal(signal.SIGTERM)
    assert process.wait(60) == 0, serve_log.read_text()

    def pending() -> set[str]:
        return {a["labels"]["alertname"] for a in prometheus.api("alerts")["alerts"] if a["state"] == "pending"}

    wait_until(
        lambda: {"GitopsMlEndpointNotReady", "GitopsMlReplicasNotReady"} <= pending(),
        "the readiness alerts",
        prometheus.logs,
    )
    alerts = {a["labels"]["alertname"]: a for a in prometheus.api("alerts")["alerts"]}
    assert alerts["GitopsMlReplicasNotReady"]["annotations"]["summary"] == "iris in prod: 1 replica(s) not ready"
    assert alerts["GitopsMlEndpointNotReady"]["labels"]["severity"] == "critical"
