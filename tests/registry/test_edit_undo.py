"""Any failure after an edit wrote files undoes them, and a failure after the commit leaves the user
on the branch they started from with the working tree as it was; the same command then finishes."""

from __future__ import annotations

import json
from typing import Any, Callable

import pytest
from click.testing import Result

from tests.registry.conftest import GitRepo
from tests.registry.edit_support import BRANCH, IRIS, OPEN_QUERY, PULLS, gh_env, remote_sha, repo, retrain, state  # noqa: F401
from tests.registry.github_server import GitHubServer, github, pull  # noqa: F401


def test_an_unexpected_crash_in_render_undoes_the_edit(
    repo: GitRepo, invoke: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    import gitops_ml.render.service as render_service

    def crash(request: Any) -> Any:
        # half-way through writing the render root, then a bug
        (repo.path / "deploy/apps/staging/iris/kustomization.yaml").write_text("half written\n")
        (repo.path / "deploy/apps/staging/iris/new.yaml").write_text("new\n")
        raise RuntimeError("simulated bug in render")

    monkeypatch.setattr(render_service, "render_repository", crash)
    retrain(repo)
    before = state(repo)
    iris = repo.read(IRIS)
    result = invoke("bump", "iris", "--branch", BRANCH)
    assert result.exit_code == 70, result.output
    assert "internal error: RuntimeError: simulated bug in render" in result.stderr
    assert "Traceback" not in result.output
    assert repo.read(IRIS) == iris
    assert state(repo) == before  # model.yaml and the render root as they were, no branch


def test_a_render_error_names_the_render_and_undoes_the_edit(
    repo: GitRepo, invoke: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    import gitops_ml.render.service as render_service
    from gitops_ml.errors import RenderError

    def refuse(request: Any) -> Any:
        raise RenderError("kustomize is not happy")

    monkeypatch.setattr(render_service, "render_repository", refuse)
    before = state(repo)
    result = invoke("bump", "iris")
    assert result.exit_code == 1
    assert "error: kustomize is not happy" in result.stderr
    assert "hint: the edit was undone: fix the render error and run it again" in result.stderr
    assert state(repo) == before


def test_a_rejected_push_leaves_the_user_where_they_started(repo: GitRepo, invoke: Callable[..., Result]) -> None:
    hook = repo.origin / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'protected: pushes are closed' >&2\nexit 1\n")
    hook.chmod(0o755)
    retrain(repo)
    before = state(repo)
    result = invoke("bump", "iris", "--branch", BRANCH, "--push")
    assert result.exit_code == 5, result.output
    assert "protected: pushes are closed" in result.stderr
    assert f"the commit is kept on the local branch '{BRANCH}'" in result.stderr
    assert "you are still on 'main'" in result.stderr
    current, head, branches, status = state(repo)
    assert (current, head, status) == before[:2] + before[3:]
    assert branches == [BRANCH, "main"]
    assert repo.git("show", "--name-only", "--format=", BRANCH).split()[-1] == IRIS


# --- (14) a failed pull request leaves the user where they started; the same command finishes ----


def test_after_a_failed_pull_request_the_same_command_opens_it(
    repo: GitRepo, invoke: Callable[..., Result], gh_env: GitHubServer
) -> None:
    retrain(repo)
    before = state(repo)
    for _ in range(4):
        gh_env.expect("GET", PULLS, 502, {"message": "Server Error"}, query=OPEN_QUERY)
    failed = invoke("bump", "iris", "--pr")
    assert failed.exit_code == 5, failed.output
    assert "GitHub failed 4 times" in failed.stderr
    assert (
        f"you are still on 'main' with your working tree as it was; the commit is kept on branch '{BRANCH}' (pushed to origin)"
        in failed.stderr
    )
    assert "run the same command again to open the pull request" in failed.stderr
    pushed = remote_sha(repo)
    assert pushed
    current, head, _, status = state(repo)
    assert (current, head, status) == (before[0], before[1], before[3])
    gh_env.assert_done()

    gh_env.expect("GET", PULLS, 200, [], query=OPEN_QUERY)
    gh_env.expect("POST", PULLS, 201, pull(12, BRANCH), body_check=lambda body: None)
    again = invoke("bump", "iris", "--pr", "--format", "json")
    assert again.exit_code == 0, again.output
    data = json.loads(again.stdout)
    assert (data["commit"], data["commitCreated"], data["pullRequest"]["number"]) == (pushed, False, 12)
    assert repo.git("branch", "--show-current").strip() == BRANCH
    gh_env.assert_done()


def test_an_unreachable_github_is_reported_and_nothing_is_left_half_done(
    repo: GitRepo, invoke: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "x")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/models")
    monkeypatch.setenv("GITHUB_API_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("GITOPS_ML_GITHUB_BACKOFF", "0")
    retrain(repo)
    before = state(repo)
    result = invoke("bump", "iris", "--pr")
    assert result.exit_code == 5
    assert "cannot reach GitHub at http://127.0.0.1:9" in result.stderr
    current, head, _, status = state(repo)
    assert (current, head, status) == (before[0], before[1], before[3])
