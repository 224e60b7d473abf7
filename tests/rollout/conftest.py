"""A real Prometheus (Debian's `prometheus`) started once per session on 127.0.0.1, scraping every
second the local `gitops-ml serve` processes a test names; and a starter for those servers.

In CI (CI=true) a Prometheus that is missing or does not start fails the tests; elsewhere they skip.
Waits poll a condition with a deadline; nothing sleeps for ordering.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest
from click.testing import CliRunner, Result
from prometheus_process import prometheus_process
from rollout.analysis_repo import argo_rollouts, checkout, make_repo

from gitops_ml.cli.main import cli

GITOPS_ML = Path(sys.executable).with_name("gitops-ml")
DEADLINE = 90.0  # a loaded 2-core machine starts processes slowly


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(
    condition: Callable[[], Any], what: str, deadline: float = DEADLINE, logs: Callable[[], str] = lambda: ""
) -> Any:
    end = time.monotonic() + deadline
    while True:
        try:
            value = condition()
        except (httpx.HTTPError, OSError):
            value = None
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {deadline:g} s waiting for {what}\n{logs()}")
        time.sleep(0.2)  # polling interval of a wait with a deadline, not an ordering sleep


@dataclass
class PrometheusServer:
    url: str
    process: subprocess.Popen[bytes]
    targets_file: Path
    log: Path
    targets: dict[str, dict[str, str]] = field(default_factory=dict)  # address -> extra labels

    def query(self, promql: str) -> list[dict[str, Any]]:
        body = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=10).json()
        assert body["status"] == "success", body
        return list(body["data"]["result"])

    def value(self, promql: str) -> float | None:
        result = self.query(promql)
        return float(result[0]["value"][1]) if result else None

    def scrape(self, *addresses: str) -> None:
        """Add targets (host:port) and wait until Prometheus has scraped each of them."""
        for address in addresses:
            self.targets[address] = {}
        tmp = self.targets_file.with_suffix(".tmp")
        tmp.write_text(json.dumps([{"targets": [a], "labels": labels} for a, labels in sorted(self.targets.items())]))
        tmp.replace(self.targets_file)

        def all_up() -> bool:
            active = httpx.get(f"{self.url}/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
            health = {t["labels"]["instance"]: t["health"] for t in active}
            return all(health.get(a) == "up" for a in addresses)

        wait_until(all_up, f"Prometheus to scrape {', '.join(addresses)}", logs=self.log.read_text)

    def wait_for(self, promql: str, expected: float, what: str) -> None:
        """Until the query (a count of what the test sent) reaches the expected value: every sample scraped."""
        wait_until(lambda: (self.value(promql) or 0) >= expected, what, logs=self.log.read_text)


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    home = tmp_path_factory.mktemp("prometheus")
    targets = home / "targets.json"
    targets.write_text("[]")
    config = home / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n"
        "- job_name: gitops-ml\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        f"  file_sd_configs:\n  - files: ['{targets}']\n    refresh_interval: 1s\n"
    )
    with prometheus_process(home, config, "--web.enable-lifecycle") as (url, process, log):
        yield PrometheusServer(url, process, targets, log)


@dataclass
class Served:
    """A `gitops-ml serve` process."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def stop(self) -> int:
        """SIGTERM and wait: the server drains and flushes its captures."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(60)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """Start `gitops-ml serve MODEL_DIR --env ENV` on a free port (extra GITOPS_ML_* in `env`); ready when it returns."""
    started: list[Served] = []

    def start(model_dir: Path, environment: str, *, extra_env: dict[str, str] | None = None, **env: str) -> Served:
        port = free_port()
        log = tmp_path / f"serve-{len(started)}.log"
        variables = {k: v for k, v in os.environ.items() if not k.startswith("GITOPS_ML_") or k == "GITOPS_ML_ENV_MANAGER"}
        variables.update({f"GITOPS_ML_{k.upper()}": v for k, v in env.items()})
        variables.update(extra_env or {})
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    str(GITOPS_ML),
                    "serve",
                    str(model_dir),
                    "--env",
                    environment,
                    "--port",
                    str(port),
                    "--capture-dir",
                    str(tmp_path / "capture"),
                ],
                env=variables,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        served = Served(process, port, log)
        started.append(served)

        def ready() -> bool:
            answer = httpx.get(f"{served.url}/readyz", timeout=5)
            if answer.status_code != 200 and answer.json().get("status") == "failed":
                raise AssertionError(f"{model_dir}: init() failed\n{log.read_text()}")
            return answer.status_code == 200

        wait_until(ready, f"{model_dir} to serve", logs=log.read_text)
        return served

    yield start
    for served in started:
        if served.process.poll() is None:
            served.process.send_signal(signal.SIGTERM)
    for served in started:
        try:
            served.process.wait(30)
        except subprocess.TimeoutExpired:
            served.process.kill()
            served.process.wait(10)


def run(*args: str) -> Result:
    """`gitops-ml ARGS` in process; stdout and stderr apart."""
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@dataclass(frozen=True)
class Analysis:
    repo: Path  # working tree: every scenario's environment has a canary and a shadow of iris@1.1.0
    stable_dir: Path  # models/iris at 1.0.0, a checkout of history
    rendered: Path  # the render, with Argo Rollouts: AnalysisTemplates


@pytest.fixture(scope="session")
def analysis(tmp_path_factory: pytest.TempPathFactory) -> Analysis:
    base = tmp_path_factory.mktemp("canary")
    repo, first = make_repo(base / "repo")
    stable = checkout(repo, first, base / "stable")
    argo_rollouts(repo)
    rendered = base / "rendered"
    result = run("render", str(repo), "--out", str(rendered))
    assert result.exit_code == 0, result.stderr
    return Analysis(repo, stable / "models" / "iris", rendered)
