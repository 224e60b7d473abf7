"""Canary analysis against a real Prometheus scraping real `gitops-ml serve` processes: a stable
version (a checkout of iris@1.0.0) and a candidate (iris@1.1.0) get the same requests; `canary status`
and the rendered AnalysisTemplate's queries judge the candidate. A good candidate passes; one that
errors 5 % of the time, one that is slow and one that predicts another class distribution each fail
on their own criterion; no traffic yet and an unreachable Prometheus get codes of their own."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import httpx
import pytest
import yaml
from click.testing import Result
from rollout.analysis_repo import ROWS
from rollout.conftest import Analysis, PrometheusServer, Served, free_port, run
from support import require

from gitops_ml.rollout.queries import concurrency_query

REQUESTS = 60


def drive(servers: list[Served], scenario: str, count: int = REQUESTS) -> None:
    """The same requests, with the same ids, to every server: what a mirror or a split sees."""

    def send(i: int) -> None:
        rows = [ROWS[(i + k) % 3] for k in range(3)]
        for server in servers:
            httpx.post(
                f"{server.url}/score", json={"data": rows}, headers={"X-Request-Id": f"{scenario}-{i}"}, timeout=30
            )

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(send, range(count)))


def start_pair(
    analysis: Analysis, serve: Callable[..., Served], prometheus: PrometheusServer, scenario: str, fault: str
) -> tuple[Served, Served]:
    stable = serve(analysis.stable_dir, scenario)
    candidate = serve(analysis.repo / "models" / "iris", scenario, track="canary", extra_env={"IRIS_FAULT": fault})
    prometheus.scrape(stable.address, candidate.address)  # a first sample of every counter, at 0
    return stable, candidate


def template_verdicts(analysis: Analysis, prometheus: PrometheusServer, scenario: str) -> dict[str, tuple[str, str]]:
    """metric -> (verdict by the AnalysisTemplate's own conditions, query), evaluated on our Prometheus."""
    template = yaml.safe_load((analysis.rendered / "apps" / scenario / "iris" / "analysistemplate.yaml").read_text())
    out = {}
    for metric in template["spec"]["metrics"]:
        query = metric["provider"]["prometheus"]["query"]
        result = [float(r["value"][1]) for r in prometheus.query(query)]
        out[metric["name"]] = (_evaluate(metric, result), query)
    return out


def _evaluate(metric: dict[str, Any], result: list[float]) -> str:
    """Argo Rollouts' reading of our two conditions: `len(result) > 0 && !isNaN(result[0]) && result[0] OP X`."""
    pattern = r"len\(result\) > 0 && !isNaN\(result\[0\]\) && result\[0\] (<=|>) ([0-9.e-]+)"
    success, failure = (
        re.fullmatch(pattern, metric["successCondition"]),
        re.fullmatch(pattern, metric["failureCondition"]),
    )
    assert success and failure and success[1] == "<=" and failure[1] == ">" and success[2] == failure[2]
    if not result or result[0] != result[0]:
        return "no data"
    return "pass" if result[0] <= float(success[2]) else "fail"


def status(analysis: Analysis, prometheus: PrometheusServer, scenario: str) -> tuple[Result, dict[str, Any]]:
    result = run(
        "canary",
        "status",
        "iris",
        "--env",
        scenario,
        "--prometheus",
        prometheus.url,
        "--repo",
        str(analysis.repo),
        "--format",
        "json",
    )
    return result, json.loads(result.stdout)


@pytest.mark.slow
@pytest.mark.parametrize(
    "scenario, fault, exit_code, failing",
    [
        ("good", "", 0, set()),
        ("errors", "errors", 1, {"error-ratio"}),
        ("slow", "slow", 1, {"p99-latency"}),
        ("shifted", "shifted", 1, {"prediction-shift"}),
    ],
)
def test_canary_status_and_the_analysis_template_judge_alike(
    analysis: Analysis,
    serve: Callable[..., Served],
    prometheus: PrometheusServer,
    scenario: str,
    fault: str,
    exit_code: int,
    failing: set[str],
) -> None:
    stable, candidate = start_pair(analysis, serve, prometheus, scenario, fault)
    drive([stable, candidate], scenario)
    prometheus.wait_for(
        f'sum(gitops_ml_requests_total{{environment="{scenario}",route="score"}})',
        2 * REQUESTS,
        "every answer to be scraped",
    )
    result, report = status(analysis, prometheus, scenario)
    assert result.exit_code == exit_code, result.output
    verdicts = {c["name"]: c["verdict"] for c in report["criteria"]}
    assert {name for name, verdict in verdicts.items() if verdict == "fail"} == failing, report
    assert all(verdict == "pass" for name, verdict in verdicts.items() if name not in failing), report
    # increase() extrapolates a short series to the window's edges: the figure is at least what was sent
    # and may read up to about half again as much when the scrapes fall late (a slow machine)
    assert REQUESTS * 0.8 <= report["requests"]["candidate"] <= REQUESTS * 2
    # the controller would read the same: the rendered template's queries are canary status's, and so are the verdicts
    template = template_verdicts(analysis, prometheus, scenario)
    assert {name: verdict for name, (verdict, _) in template.items()} == verdicts
    assert {name: query for name, (_, query) in template.items()} == {c["name"]: c["query"] for c in report["criteria"]}
    by_name = {c["name"]: c for c in report["criteria"]}
    if scenario == "errors":
        assert (
            by_name["error-ratio"]["candidate"] == pytest.approx(0.05, abs=0.03)
            and by_name["error-ratio"]["stable"] == 0
        )
    if scenario == "slow":
        assert by_name["p99-latency"]["candidate"] > 1.5
    if scenario == "shifted":
        assert by_name["prediction-shift"]["candidate"] == pytest.approx(2 / 3, abs=0.1)
    # side by side for a person
    text = run(
        "canary", "status", "iris", "--env", scenario, "--prometheus", prometheus.url, "--repo", str(analysis.repo)
    )
    assert text.exit_code == exit_code
    assert re.search(r"^error ratio +[0-9.]+ % +[0-9.]+ % +<= 1\.00 % +(pass|fail)$", text.stdout, re.M), text.stdout
    assert text.stdout.splitlines()[-1].startswith(f"verdict: {'pass' if exit_code == 0 else 'fail'}")


@pytest.mark.slow
def test_no_traffic_yet_is_not_a_failure(
    analysis: Analysis, serve: Callable[..., Served], prometheus: PrometheusServer
) -> None:
    stable, candidate = start_pair(analysis, serve, prometheus, "quiet", "")
    drive([stable], "quiet", 10)  # the stable version is busy; the candidate has answered nothing yet
    prometheus.wait_for(
        'sum(gitops_ml_requests_total{environment="quiet",route="score"})', 10, "the stable's answers to be scraped"
    )
    result, report = status(analysis, prometheus, "quiet")
    assert result.exit_code == 7, result.output
    # no answer counted yet: 0 once Prometheus holds two samples of the candidate, no value before
    assert report["verdict"] == "no data" and report["requests"]["candidate"] in (0, None)
    text = run(
        "canary", "status", "iris", "--env", "quiet", "--prometheus", prometheus.url, "--repo", str(analysis.repo)
    )
    assert text.exit_code == 7
    assert "verdict: no data (no data yet: the candidate has answered no request in the window)" in text.stdout
    assert {v for v, _ in template_verdicts(analysis, prometheus, "quiet").values()} == {"no data"}, (
        "inconclusive: the Rollout pauses"
    )


def test_unreachable_prometheus_has_its_own_exit_code(analysis: Analysis) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = run("canary", "status", "iris", "--env", "good", "--prometheus", url, "--repo", str(analysis.repo))
    assert result.exit_code == 5
    assert f"error: Prometheus at {url} is unreachable" in result.stderr


def test_a_deployment_without_a_canary_is_a_usage_error(analysis: Analysis, tmp_path: Path) -> None:
    result = run(
        "canary",
        "status",
        "iris",
        "--env",
        "nowhere",
        "--prometheus",
        "http://127.0.0.1:1",
        "--repo",
        str(analysis.repo),
    )
    assert result.exit_code == 2
    assert "unknown environment 'nowhere'" in result.stderr


def test_every_query_passes_promtool(analysis: Analysis, tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    require(promtool is not None, "promtool (Debian's prometheus package) is not installed")
    assert promtool is not None
    rules = []
    for template in sorted(analysis.rendered.glob("apps/*/iris/analysistemplate.yaml")):
        for metric in yaml.safe_load(template.read_text())["spec"]["metrics"]:
            environment = template.parts[-3]
            rules.append(
                {
                    "record": f"gitops_ml:canary_{environment}:{metric['name'].replace('-', '_')}",
                    "expr": metric["provider"]["prometheus"]["query"],
                }
            )
    # and the KEDA trigger's, for the stable version and a candidate
    rules += [
        {"record": f"gitops_ml:concurrency_{track or 'stable'}", "expr": concurrency_query("iris", "prod", track)}
        for track in ("", "canary")
    ]
    assert len(rules) == 3 * 5 + 2
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "gitops-ml-canary", "rules": rules}]}))
    proc = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(rules)} rules found" in proc.stdout
