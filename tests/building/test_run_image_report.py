"""What `gitops-ml run-image` tells the user: the curl command to repeat the call (it carries the
container's key) only when --keep left the container running; otherwise that it was removed and
how to keep it. The container itself is faked at the use case (the e2e suite runs real ones)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from gitops_ml.build.run_image import RunResult
from gitops_ml.cli import run_image
from gitops_ml.cli.main import cli

KEY = "k3y-of-the-container"


@pytest.fixture
def ran(monkeypatch: pytest.MonkeyPatch) -> None:
    def execute(request: run_image.RunRequest) -> RunResult:
        return RunResult(
            model="iris",
            ref="registry.local/iris:1.0.0-abc",
            url="http://127.0.0.1:32775/score",
            status=200,
            body='{"predictions":[0,1,2]}',
            curl=f"curl -sS -X POST http://127.0.0.1:32775/score -H 'Authorization: Bearer {KEY}' --data @models/iris/sample.json",
            container="gitops-ml-iris-1",
            kept=request.keep,
            keys_dir="/tmp/gitops-ml-keys-iris-x",
        )

    monkeypatch.setattr(run_image, "execute", execute)


def test_without_keep_no_curl_for_a_removed_container(ran: None) -> None:
    result = CliRunner().invoke(cli, ["run-image", "iris", "--env", "staging"])
    assert result.exit_code == 0, result.output
    assert "HTTP 200" in result.output and '{"predictions":[0,1,2]}' in result.output
    assert "repeat:" not in result.output and "curl -sS" not in result.output and KEY not in result.output
    assert "the container gitops-ml-iris-1 was removed" in result.output
    assert "--keep" in result.output


def test_with_keep_the_curl_and_how_to_stop(ran: None) -> None:
    result = CliRunner().invoke(cli, ["run-image", "iris", "--env", "staging", "--keep"])
    assert result.exit_code == 0, result.output
    assert f"repeat: curl -sS -X POST http://127.0.0.1:32775/score -H 'Authorization: Bearer {KEY}'" in result.output
    assert "docker rm -f gitops-ml-iris-1" in result.output


def test_json_has_a_curl_only_with_keep(ran: None) -> None:
    removed = json.loads(CliRunner().invoke(cli, ["run-image", "iris", "--format", "json"]).stdout)
    assert removed["kept"] is False and removed["curl"] is None
    kept = json.loads(CliRunner().invoke(cli, ["run-image", "iris", "--keep", "--format", "json"]).stdout)
    assert kept["kept"] is True and KEY in kept["curl"]
