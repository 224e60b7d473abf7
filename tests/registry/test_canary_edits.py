"""Promotion in steps through a canary, as edits of the deployment file that keep every other byte:
`promote --canary 10` adds it, `--canary 50` moves it, `promote` makes it the stable version,
`rollback` removes it; each result validates and renders, and a refused step writes nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import pytest
from click.testing import Result

from tests.registry.conftest import GitRepo

PROD = "deployments/prod/iris.yaml"
STAGING = "deployments/staging/iris.yaml"


@pytest.fixture
def repo(git_repo: Callable[..., GitRepo], chdir: Callable[[Path], None], invoke: Callable[..., Result]) -> GitRepo:
    """The example with iris 1.1.0 committed after 1.0.0; prod runs 1.0.0."""
    made = git_repo()
    chdir(made.path)
    made.write("models/iris/model.joblib", b"retrained weights")
    assert invoke("bump", "iris").exit_code == 0
    made.commit("iris 1.1.0")
    return made


def _changed_lines(repo: GitRepo, rel: str) -> list[str]:
    diff = repo.git("diff", "-U0", "--", rel)
    return [line for line in diff.splitlines() if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def test_a_canary_in_steps_then_promoted(repo: GitRepo, invoke: Callable[..., Result]) -> None:
    before = repo.read(PROD)
    result = invoke("promote", "iris", "--env", "prod", "--canary", "10")
    assert result.exit_code == 0, result.output
    assert "Canary iris@1.1.0 in prod at 10 % (1.0.0 -> 1.1.0)" in result.stdout
    assert _changed_lines(repo, PROD) == ["+rollout:", "+  canary:", "+    model: iris@1.1.0", "+    weight: 10"]
    assert repo.read(PROD).startswith(before), "comments, order and every other line stay"
    assert invoke("validate").exit_code == 0
    assert invoke("render", "--check").exit_code == 0, "the edit re-rendered deploy/"
    route = repo.read("deploy/apps/prod/iris/httproute.yaml")
    assert "weight: 90" in route and "weight: 10" in route
    repo.commit("canary at 10 %")

    result = invoke("promote", "iris", "--env", "prod", "--canary", "50", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["newVersion"] == "1.1.0"
    assert _changed_lines(repo, PROD) == ["-    weight: 10", "+    weight: 50"]
    repo.commit("canary at 50 %")

    again = invoke("promote", "iris", "--env", "prod", "--canary", "50")
    assert again.exit_code == 4 and "already answers 50 %" in again.stderr

    result = invoke("promote", "iris", "--env", "prod")
    assert result.exit_code == 0, result.output
    assert "Promote iris in prod to 1.1.0 (the canary) (1.0.0 -> 1.1.0)" in result.stdout
    assert repo.read(PROD) == before.replace("model: iris@1.0.0\n", "model: iris@1.1.0\n")
    assert invoke("render", "--check").exit_code == 0
    assert not Path("deploy/apps/prod/iris/canary-deployment.yaml").exists()


def test_rollback_removes_the_canary_and_its_shadow_keeps_other_keys(
    repo: GitRepo, invoke: Callable[..., Result]
) -> None:
    text = repo.read(PROD).replace(
        "model: iris@1.0.0\n",
        "model: iris@1.0.0\nrollout:  # the candidate\n  canary: {model: iris@1.1.0, weight: 25}\n  shadow: {model: iris@1.1.0}\n"
        "  analysis: {maxErrorRatio: 0.02}\n  controller: gateway-api\n",
    )
    repo.write(PROD, text)
    repo.commit("canary and shadow")
    result = invoke("rollback", "iris", "--env", "prod")
    assert result.exit_code == 0, result.output
    assert "Roll back the canary of iris@1.1.0 in prod (1.1.0 -> 1.0.0)" in result.stdout
    assert "note: the shadow of iris@1.1.0 is removed with the canary" in result.stderr
    assert _changed_lines(repo, PROD) == [
        "-  canary: {model: iris@1.1.0, weight: 25}",
        "-  shadow: {model: iris@1.1.0}",
        "-  analysis: {maxErrorRatio: 0.02}",
    ]
    assert "rollout:  # the candidate\n  controller: gateway-api\n" in repo.read(PROD)
    assert invoke("validate").exit_code == 0


def test_a_canary_behind_an_ingress_is_refused_and_writes_nothing(repo: GitRepo, invoke: Callable[..., Result]) -> None:
    # staging's endpoint is an Ingress: a canary cannot split its traffic
    repo.set_pin("staging", "iris", "iris@1.0.0")
    repo.commit("staging pinned")
    result = invoke("promote", "iris", "--env", "staging", "--canary", "10")
    assert result.exit_code == 4
    assert "deployments/staging/iris.yaml" in result.stderr and "an Ingress cannot" in result.stderr
    assert repo.git("status", "--porcelain") == "", "a refused step writes nothing"


@pytest.mark.parametrize(
    "args, code, message",
    [
        (("promote", "iris", "--env", "prod", "--canary", "120"), 2, "120 is not in the range 0<=x<=100"),
        (
            ("promote", "iris", "--env", "prod", "--canary", "10", "--version", "1.0.0"),
            4,
            "prod already runs iris@1.0.0: a canary is another version",
        ),
        (
            ("promote", "iris", "--env", "prod", "--canary", "10", "--version", "1.9.0"),
            4,
            "version 1.9.0 of iris does not exist",
        ),
        (
            ("promote", "iris", "--env", "prod", "--canary", "10", "--from", "staging"),
            2,
            "--canary takes the version from --version",
        ),
    ],
)
def test_refused_canary_steps(
    repo: GitRepo, invoke: Callable[..., Result], args: tuple[str, ...], code: int, message: str
) -> None:
    before = repo.read(PROD)
    result = invoke(*args)
    assert result.exit_code == code, result.output
    assert message in result.output
    assert repo.read(PROD) == before


def test_another_version_while_a_canary_runs_is_refused(repo: GitRepo, invoke: Callable[..., Result]) -> None:
    assert invoke("promote", "iris", "--env", "prod", "--canary", "10").exit_code == 0
    repo.commit("canary")
    result = invoke("rollback", "iris", "--env", "prod", "--to", "1.0.0")
    assert result.exit_code == 4 and "prod runs a canary: roll it back first" in result.stderr
    result = invoke("promote", "iris", "--env", "prod", "--from", "staging")
    assert result.exit_code == 4 and "prod runs a canary of iris@1.1.0" in result.stderr
