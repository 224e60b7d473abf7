"""`gitops-ml alert` against a local server that plays GitHub and checks every request: a crossed
threshold opens one issue per model and environment and dispatches retraining citing it; the next
crossing updates that issue and does not retrain the same version again; a newer version that drifts
too is retrained again; no crossing makes no request at all."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.monitor.support import IRIS_VERSION, batch, copy_example, invoke, iris_rows, write_capture
from tests.registry.github_server import INTEGRATION_403, REPO, TOKEN, GitHubServer, github, user  # noqa: F401

ISSUES = f"/repos/{REPO}/issues"
DISPATCH = f"/repos/{REPO}/actions/workflows/gitops-ml-retrain.yml/dispatches"
MARKER = "<!-- gitops-ml:monitor iris/staging -->"
LIST_QUERY = {"labels": "gitops-ml-monitor", "state": "open", "per_page": "100", "page": "1"}
TITLE = "gitops-ml monitor: iris in staging crossed a threshold"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return copy_example(tmp_path / "repo")


@pytest.fixture
def gh(github: GitHubServer, monkeypatch: pytest.MonkeyPatch) -> GitHubServer:
    for name, value in {
        "GITHUB_TOKEN": TOKEN,
        "GITHUB_API_URL": github.url,
        "GITHUB_REPOSITORY": REPO,
        "GITOPS_ML_GITHUB_BACKOFF": "0",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_RUN_ID": "4711",
        "GITHUB_REF_NAME": "main",
    }.items():
        monkeypatch.setenv(name, value)
    return github


def _issue(number: int, body: str) -> dict[str, Any]:
    return {
        "number": number,
        "html_url": f"https://github.com/{REPO}/issues/{number}",
        "title": TITLE,
        "body": body,
        "user": user("github-actions[bot]", "Bot"),
        "labels": [{"name": "gitops-ml-monitor"}],
    }


def _drifted(tmp_path: Path) -> Path:
    captures = tmp_path / "captures"
    write_capture(captures, batch(iris_rows(1000, seed=2, shift=(0, 0, 2.5, 1.0))))
    return captures


def alert(repo: Path, captures: Path, *args: str):  # type: ignore[no-untyped-def]
    return invoke("alert", "--repo", str(repo), "--env", "staging", "--capture", str(captures), *args)


def _opened_body(body: dict[str, Any]) -> None:
    assert body["title"] == TITLE and body["labels"] == ["gitops-ml-monitor"]
    text = body["body"]
    assert text.startswith(MARKER + "\n" + f"<!-- gitops-ml:retrained-for {IRIS_VERSION} -->\n")
    assert f"### gitops-ml monitor: iris {IRIS_VERSION} in staging — threshold crossed" in text
    assert "| **drifted** | `petal_length` | numeric |" in text
    assert "([run](https://github.com/acme/models/actions/runs/4711))" in text
    assert "was dispatched (`gitops-ml-retrain.yml`)" in text


def test_a_crossing_opens_one_issue_then_updates_it_and_retrains_once(
    repo: Path, tmp_path: Path, gh: GitHubServer
) -> None:
    captures = _drifted(tmp_path)
    gh.expect("GET", "/user", 403, INTEGRATION_403)
    gh.expect("GET", ISSUES, 200, [], query=LIST_QUERY)
    gh.expect("POST", ISSUES, 201, _issue(12, MARKER), body_check=_opened_body)
    gh.expect("POST", DISPATCH, 204, None, body={"ref": "main", "inputs": {"model": "iris", "evidence": "12"}})
    first = alert(repo, captures, "--issues", "--dispatch", "gitops-ml-retrain.yml")
    assert first.code == 0, first.output
    assert f"iris {IRIS_VERSION} in staging: threshold crossed: 2 feature(s) drifted" in first.stdout
    assert "opened issue #12 https://github.com/acme/models/issues/12" in first.stdout
    assert "dispatched gitops-ml-retrain.yml for iris (evidence #12)" in first.stdout
    assert "digits" in first.stdout and "no data" in first.stdout  # nothing captured for digits: nothing filed
    gh.assert_done()

    # the next scheduled run finds the same drift: the issue is updated, the same version not retrained again
    opened = next(body for method, path, body in gh.seen if (method, path) == ("POST", ISSUES))["body"]
    others = [
        _issue(3, "a person's issue that mentions " + MARKER),
        {**_issue(9, MARKER), "pull_request": {"url": "x"}},
    ]

    def updated(body: dict[str, Any]) -> None:
        assert body["title"] == TITLE
        assert body["body"].startswith(MARKER + "\n" + f"<!-- gitops-ml:retrained-for {IRIS_VERSION} -->\n")
        assert "threshold crossed" in body["body"]

    gh.expect("GET", "/user", 403, INTEGRATION_403)
    gh.expect("GET", ISSUES, 200, [*others, _issue(12, opened)], query=LIST_QUERY)
    gh.expect("PATCH", f"{ISSUES}/12", 200, _issue(12, opened), body_check=updated)
    second = alert(repo, captures, "--issues", "--dispatch", "gitops-ml-retrain.yml", "--format", "json")
    assert second.code == 0, second.output
    report = json.loads(second.stdout)
    staging = next(e for e in report["endpoints"] if e["model"] == "iris")
    assert staging["issue"] == {"number": 12, "url": f"https://github.com/{REPO}/issues/12", "created": False}
    assert staging["retrain"] is False and report["dispatches"] == []
    gh.assert_done()


def test_a_newer_version_that_drifts_too_is_retrained_again(repo: Path, tmp_path: Path, gh: GitHubServer) -> None:
    captures = _drifted(tmp_path)
    old = f"{MARKER}\n<!-- gitops-ml:retrained-for 0.9.0 -->\n\nthe report of 0.9.0\n"
    gh.expect("GET", "/user", 403, INTEGRATION_403)
    gh.expect("GET", ISSUES, 200, [_issue(12, old)], query=LIST_QUERY)
    gh.expect(
        "PATCH",
        f"{ISSUES}/12",
        200,
        _issue(12, old),
        body_check=lambda b: None if f"retrained-for {IRIS_VERSION} -->" in b["body"] else pytest.fail("not marked"),
    )
    gh.expect("POST", DISPATCH, 204, None, body={"ref": "release", "inputs": {"model": "iris", "evidence": "12"}})
    result = alert(repo, captures, "--issues", "--dispatch", "gitops-ml-retrain.yml", "--ref", "release")
    assert result.code == 0, result.output
    assert (
        "updated issue #12" in result.stdout
        and "dispatched gitops-ml-retrain.yml for iris (evidence #12)" in result.stdout
    )
    gh.assert_done()


def test_no_crossing_files_nothing(repo: Path, tmp_path: Path, gh: GitHubServer) -> None:
    calm = tmp_path / "calm"
    write_capture(calm, batch(iris_rows(1000, seed=1)))
    result = alert(repo, calm, "--issues", "--dispatch", "gitops-ml-retrain.yml")
    assert result.code == 0, result.output
    assert f"iris {IRIS_VERSION} in staging: ok: no drift" in result.stdout
    assert gh.seen == []  # not even a look for issues
    gh.assert_done()


def test_without_issues_a_crossing_is_printed_and_fails_the_run(repo: Path, tmp_path: Path, gh: GitHubServer) -> None:
    result = alert(repo, _drifted(tmp_path))
    assert result.code == 1, result.output
    assert "threshold crossed" in result.stdout and gh.seen == []


def test_bad_command_lines_and_endpoints_that_are_not_set_up(repo: Path, tmp_path: Path, gh: GitHubServer) -> None:
    captures = _drifted(tmp_path)
    assert "give --issues too" in alert(repo, captures, "--dispatch", "gitops-ml-retrain.yml").output
    assert alert(repo, captures, "--issues", "--dispatch", "x/y.yml").code == 2
    unknown = alert(repo, captures, "--model", "irsi")
    assert unknown.code == 2 and "--model irsi: no endpoint has it" in unknown.output
    # no --capture: the example's deployments name no sink, so every endpoint is skipped and said so
    skipped = invoke("alert", "--repo", str(repo), "--env", "staging")
    assert skipped.code == 0, skipped.output
    assert "iris in staging: skipped: no captures to read" in skipped.stdout
    gh.assert_done()
