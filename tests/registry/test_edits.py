"""bump, promote and rollback through the CLI on real git repositories with a bare origin, and the
pull requests they open against a local GitHub server."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable

import pytest
from click.testing import Result

from tests.registry.conftest import GitRepo
from tests.registry.edit_support import gh_env  # noqa: F401 - a fixture
from tests.registry.github_server import REPO, TOKEN, GitHubServer, github, pull  # noqa: F401

IRIS = "models/iris/model.yaml"
PROD = "deployments/prod/iris.yaml"


@pytest.fixture
def repo(git_repo: Callable[..., GitRepo], chdir: Callable[[Path], None]) -> GitRepo:
    made = git_repo()
    chdir(made.path)
    return made


def status(repo: GitRepo) -> str:
    return repo.git("status", "--porcelain")


def retrain(
    repo: GitRepo, payload: bytes = b"retrained weights", metrics: dict[str, float] | None = None
) -> tuple[str, Path]:
    """What a training job leaves behind: a new artifact file and a metrics file outside the repo."""
    repo.write("models/iris/model.joblib", payload)
    metrics_file = repo.path.parent / "metrics.json"
    metrics_file.write_text(json.dumps(metrics or {"accuracy": 0.99, "f1": 0.98}))
    return hashlib.sha256(payload).hexdigest(), metrics_file


def test_bump_edits_only_the_intended_lines(repo: GitRepo, invoke: Callable[..., Result]) -> None:
    sha, metrics = retrain(repo)
    result = invoke("bump", "iris", "--metrics", metrics)
    assert result.exit_code == 0, result.output
    assert "Bump iris to 1.1.0 (1.0.0 -> 1.1.0)" in result.output
    diff = repo.git("diff", "-U0", "--", IRIS)
    changed = [line for line in diff.splitlines() if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert changed == [
        "-version: 1.0.0",
        "+version: 1.1.0",
        "-  sha256: b65497ba5ff3bb54f4c4ac5ea216191e2526fb4c535402642f3184bea58ed809",
        f"+  sha256: {sha}",
        "-  accuracy: 0.9778",
        "+  accuracy: 0.99",
        "+  f1: 0.98",
    ]
    assert invoke("validate").exit_code == 0


def test_bump_major_patch_and_explicit_version(repo: GitRepo, invoke: Callable[..., Result]) -> None:
    retrain(repo)
    assert invoke("bump", "iris", "--patch").exit_code == 0
    assert "version: 1.0.1\n" in repo.read(IRIS)
    repo.commit("patch")
    assert invoke("bump", "iris", "--major").exit_code == 0
    assert "version: 2.0.0\n" in repo.read(IRIS)
    repo.commit("major")
    assert invoke("bump", "iris", "--version", "2.3.0").exit_code == 0
    assert "version: 2.3.0\n" in repo.read(IRIS)


def test_bump_forces_major_when_the_schema_breaks(repo: GitRepo, invoke: Callable[..., Result]) -> None:
    schema = json.loads(repo.read("models/iris/schema.json"))
    schema.setdefault("required", [])
    schema["required"] = sorted(set(schema["required"]) | {"extra"})
    schema.setdefault("properties", {})["extra"] = {"type": "string"}
    repo.write("models/iris/schema.json", json.dumps(schema, indent=2))
    sample = json.loads(repo.read("models/iris/sample.json"))
    repo.write("models/iris/sample.json", json.dumps({**sample, "extra": "cm"}))
    retrain(repo)
    result = invoke("bump", "iris", "--minor", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["newVersion"] == "2.0.0"
    assert any("MAJOR bump forced" in note and "now required" in note for note in data["notes"])
    refused = invoke("bump", "iris", "--version", "1.5.0")
    assert refused.exit_code == 4 and "not newer" in refused.stderr  # 2.0.0 is already written


def test_bump_on_a_branch_commits_pushes_and_reruns_idempotently(repo: GitRepo, invoke: Callable[..., Result]) -> None:
    retrain(repo)
    first = invoke("bump", "iris", "--branch", "retrain/iris", "--push", "--format", "json")
    assert first.exit_code == 0, first.output
    data = json.loads(first.stdout)
    assert (data["branch"], data["commitCreated"], data["pushed"]) == ("retrain/iris", True, True)
    assert repo.git("branch", "--show-current").strip() == "retrain/iris"
    assert status(repo) == ""
    assert repo.git("--git-dir", str(repo.origin), "rev-parse", "refs/heads/retrain/iris").strip() == data["commit"]
    # the version's files, and the render they change, so the pull request passes `render --check`
    assert repo.git("show", "--name-only", "--format=%s", "HEAD").split() == [
        "Bump",
        "iris",
        "to",
        "1.1.0",
        "deploy/.gitops-ml-render.json",
        "deploy/apps/staging/iris/deployment-patch.yaml",
        "deploy/apps/staging/iris/kustomization.yaml",
        "models/iris/model.joblib",
        "models/iris/model.yaml",
    ]
    assert invoke("render", "--check").exit_code == 0
    # the same training output, run again from main: the same branch and commit, not a second one
    repo.git("switch", "-q", "main")
    retrain(repo)
    again = invoke("bump", "iris", "--branch", "retrain/iris", "--push", "--format", "json")
    assert again.exit_code == 0, again.output
    assert (json.loads(again.stdout)["commit"], json.loads(again.stdout)["commitCreated"]) == (data["commit"], False)
    # a different training output replaces the branch's commit
    repo.git("switch", "-q", "main")
    retrain(repo, b"other weights")
    third = json.loads(invoke("bump", "iris", "--branch", "retrain/iris", "--push", "--format", "json").stdout)
    assert third["commitCreated"] and third["commit"] != data["commit"]
    assert repo.git("rev-list", "--count", "main..retrain/iris").strip() == "1"
    assert repo.git("--git-dir", str(repo.origin), "rev-parse", "refs/heads/retrain/iris").strip() == third["commit"]


def test_an_edit_that_breaks_the_render_is_undone(repo: GitRepo, invoke: Callable[..., Result]) -> None:
    schema = json.loads(repo.read("models/iris/schema.json"))
    schema["required"] = sorted(set(schema.get("required", [])) | {"extra"})
    schema.setdefault("properties", {})["extra"] = {"type": "string"}
    repo.write("models/iris/schema.json", json.dumps(schema, indent=2))  # the sample no longer fits
    before = repo.read(IRIS)
    result = invoke("bump", "iris")
    assert result.exit_code == 1
    assert "models/iris/sample.json:1:1: sample does not match models/iris/schema.json" in result.stderr
    assert "the edit was undone" in result.stderr
    assert repo.read(IRIS) == before


def test_promote_and_rollback_move_the_pin(repo: GitRepo, invoke: Callable[..., Result]) -> None:
    retrain(repo)
    assert invoke("bump", "iris").exit_code == 0
    repo.commit("iris 1.1.0")
    before = repo.read(PROD)
    result = invoke("promote", "iris", "--to", "prod")
    assert result.exit_code == 0, result.output
    assert repo.read(PROD) == before.replace("model: iris@1.0.0\n", "model: iris@1.1.0\n")
    repo.commit("promote")
    result = invoke("rollback", "iris", "--env", "prod")
    assert result.exit_code == 0, result.output
    assert "Roll back iris in prod to 1.0.0 (1.1.0 -> 1.0.0)" in result.output
    assert repo.read(PROD) == before


def test_promote_from_another_environment(repo: GitRepo, invoke: Callable[..., Result]) -> None:
    retrain(repo)
    assert invoke("bump", "iris").exit_code == 0
    repo.commit("iris 1.1.0")
    result = invoke("promote", "iris", "--to", "prod", "--from", "staging", "--branch", "promote/iris")
    assert result.exit_code == 0, result.output
    assert "model: iris@1.1.0\n" in repo.read(PROD)
    assert repo.git("log", "-1", "--format=%s").strip() == "Promote iris in prod to 1.1.0"


def _unchanged(repo: GitRepo) -> None:
    assert status(repo) == "", "a refused edit must write nothing"
    assert repo.git("branch", "--format=%(refname:short)").split() == ["main"]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("bump", "nope"), 4, "unknown model 'nope'"),
        (("bump", "iris", "--sha256", "xyz"), 2, "is not a SHA-256 digest"),
        (("bump", "iris", "--sha256", "0" * 64), 2, "--sha256 does not match models/iris/model.joblib"),
        (("bump", "iris", "--artifact", "s3://bucket/iris/m.joblib"), 2, "--sha256 is required"),
        (
            ("bump", "iris", "--artifact", "ftp://x/y", "--sha256", "a" * 64),
            2,
            "--artifact 'ftp://x/y': ftp:// is not supported",
        ),
        (("bump", "iris", "--metrics", "missing.json"), 2, "metrics file missing.json does not exist"),
        (("bump", "iris", "--version", "1.0.0"), 4, "1.0.0 is not newer than iris's current version 1.0.0"),
        (("bump", "iris", "--version", "0.9.0"), 4, "not newer"),
        (("promote", "iris", "--to", "prod", "--version", "9.9.9"), 4, "version 9.9.9 of iris does not exist"),
        (("promote", "iris", "--to", "prod"), 4, "prod already runs iris@1.0.0"),
        (("promote", "iris", "--to", "qa"), 4, "iris is not deployed to 'qa'"),
        (("rollback", "iris", "--env", "prod"), 4, "no older version exists"),
        (("rollback", "iris", "--env", "prod", "--to", "2.0.0"), 4, "version 2.0.0 of iris does not exist"),
        (("bump", "iris", "--branch", "bad..name"), 4, "not a valid git branch name"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_written(
    repo: GitRepo, invoke: Callable[..., Result], args: tuple[str, ...], code: int, message: str
) -> None:
    result = invoke(*args)
    assert result.exit_code == code, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output
    _unchanged(repo)


def test_a_dirty_model_file_is_refused(repo: GitRepo, invoke: Callable[..., Result]) -> None:
    repo.replace(IRIS, "description:", "# my uncommitted note\ndescription:")
    text = repo.read(IRIS)
    result = invoke("bump", "iris")
    assert result.exit_code == 4
    assert "uncommitted changes in models/iris/model.yaml" in result.stderr
    assert repo.read(IRIS) == text


def test_detached_head_with_branch_is_refused(repo: GitRepo, invoke: Callable[..., Result]) -> None:
    repo.git("checkout", "-q", "--detach", "HEAD")
    retrain(repo)
    result = invoke("bump", "iris", "--branch", "retrain/iris")
    assert result.exit_code == 4
    assert "HEAD is detached" in result.stderr
    assert "version: 1.0.0\n" in repo.read(IRIS)


def test_a_push_rejected_by_the_remote_keeps_the_local_branch(repo: GitRepo, invoke: Callable[..., Result]) -> None:
    hook = repo.origin / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'protected: pushes are closed' >&2\nexit 1\n")
    hook.chmod(0o755)
    retrain(repo)
    result = invoke("bump", "iris", "--branch", "retrain/iris", "--push")
    assert result.exit_code == 5, result.output
    assert "origin rejected the push of 'retrain/iris'" in result.stderr
    assert "protected: pushes are closed" in result.stderr
    assert "kept on the local branch" in result.stderr
    assert repo.git("rev-parse", "--verify", "-q", "refs/heads/retrain/iris").strip()


def test_pr_without_a_token_is_refused_before_anything_is_written(repo: GitRepo, invoke: Callable[..., Result]) -> None:
    retrain(repo)
    repo.commit("artifact")
    result = invoke("bump", "iris", "--pr")
    assert result.exit_code == 3
    assert "GITHUB_TOKEN is not set" in result.stderr
    _unchanged(repo)


# --- pull requests -------------------------------------------------------------------------------


def _body_says(*parts: str) -> Callable[[Any], None]:
    def check(body: Any) -> None:
        assert body["title"] == "Bump iris to 1.1.0"
        for part in parts:
            assert part in body["body"], f"{part!r} not in body:\n{body['body']}"

    return check


def test_bump_pr_opens_then_updates_the_same_pull_request(
    repo: GitRepo, invoke: Callable[..., Result], gh_env: GitHubServer
) -> None:
    sha, metrics = retrain(repo)
    pulls = f"/repos/{REPO}/pulls"
    query = {"head": "acme:gitops-ml/bump-iris", "state": "open", "per_page": "100"}
    check = _body_says(
        "`1.0.0` → `1.1.0`",
        f"`{sha}`",
        "| accuracy | 0.9778 | 0.99 | +0.0122 |",
        "| f1 | — | 0.98 | new |",
        "#### Input schema",
        "Unchanged.",
        "#### Rendered manifests",
        "| staging | iris | changed |",
        "+        app.kubernetes.io/version: 1.1.0",
    )
    gh_env.expect("GET", pulls, 200, [], query=query)
    gh_env.expect(
        "POST",
        pulls,
        201,
        pull(12, "gitops-ml/bump-iris"),
        body_check=lambda b: (check(b), _assert(b["head"] == "gitops-ml/bump-iris" and b["base"] == "main")),
    )
    result = invoke("bump", "iris", "--metrics", metrics, "--pr")
    assert result.exit_code == 0, result.output
    assert f"opened pull request #12 https://github.com/{REPO}/pull/12" in result.output
    gh_env.assert_done()
    # the same inputs again: same branch, and the open pull request is updated, not duplicated
    repo.git("switch", "-q", "main")
    retrain(repo)
    gh_env.expect("GET", pulls, 200, [pull(12, "gitops-ml/bump-iris")], query=query)
    gh_env.expect("PATCH", f"{pulls}/12", 200, pull(12, "gitops-ml/bump-iris"), body_check=check)
    result = invoke("bump", "iris", "--metrics", metrics, "--pr")
    assert result.exit_code == 0, result.output
    assert "updated pull request #12" in result.output
    gh_env.assert_done()


def _assert(ok: bool) -> None:
    assert ok


def test_github_5xx_fails_after_retries_and_keeps_the_pushed_branch(
    repo: GitRepo, invoke: Callable[..., Result], gh_env: GitHubServer
) -> None:
    retrain(repo)
    for _ in range(4):
        gh_env.expect(
            "GET",
            f"/repos/{REPO}/pulls",
            502,
            {"message": "Server Error"},
            query={"head": "acme:gitops-ml/bump-iris", "state": "open", "per_page": "100"},
        )
    result = invoke("bump", "iris", "--pr")
    assert result.exit_code == 5, result.output
    assert "GitHub failed 4 times" in result.stderr
    assert (
        "the commit is kept on branch 'gitops-ml/bump-iris' (pushed to origin); run the same command again"
        in result.stderr
    )
    assert repo.git("branch", "--show-current").strip() == "main"
    assert repo.git("--git-dir", str(repo.origin), "rev-parse", "--verify", "refs/heads/gitops-ml/bump-iris").strip()
    gh_env.assert_done()


def test_refused_token_is_a_clear_error(repo: GitRepo, invoke: Callable[..., Result], gh_env: GitHubServer) -> None:
    retrain(repo)
    gh_env.expect(
        "GET",
        f"/repos/{REPO}/pulls",
        401,
        {"message": "Bad credentials"},
        query={"head": "acme:gitops-ml/bump-iris", "state": "open", "per_page": "100"},
    )
    result = invoke("bump", "iris", "--pr")
    assert result.exit_code == 5
    assert "GitHub refused the token (401 Bad credentials)" in result.stderr
    assert "Traceback" not in result.output
