"""Shared by the edit tests: a repository fixture, the GitHub environment, and what a user sees of a
repository (branch, HEAD, branches, `git status`)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from tests.registry.conftest import GitRepo
from tests.registry.github_server import REPO, TOKEN, GitHubServer

IRIS = "models/iris/model.yaml"
BRANCH = "gitops-ml/bump-iris"
PULLS = f"/repos/{REPO}/pulls"
OPEN_QUERY = {"head": f"acme:{BRANCH}", "state": "open", "per_page": "100"}


@pytest.fixture
def repo(git_repo: Callable[..., GitRepo], chdir: Callable[[Path], None]) -> GitRepo:
    made = git_repo()
    chdir(made.path)
    return made


@pytest.fixture
def gh_env(github: GitHubServer, monkeypatch: pytest.MonkeyPatch) -> GitHubServer:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_API_URL", github.url)
    monkeypatch.setenv("GITHUB_REPOSITORY", REPO)
    monkeypatch.setenv("GITOPS_ML_GITHUB_BACKOFF", "0")
    return github


def retrain(repo: GitRepo, payload: bytes = b"retrained weights") -> None:
    """What a training job leaves behind: a new artifact file in the model directory."""
    repo.write("models/iris/model.joblib", payload)


def state(repo: GitRepo) -> tuple[str, str, list[str], str]:
    """What a user sees of the repository: current branch, HEAD, local branches, `git status`."""
    return (
        repo.git("branch", "--show-current").strip(),
        repo.git("rev-parse", "HEAD").strip(),
        repo.git("branch", "--format=%(refname:short)").split(),
        repo.git("status", "--porcelain", "--untracked-files=all"),
    )


def remote_sha(repo: GitRepo, branch: str = BRANCH) -> str | None:
    out = repo.git("ls-remote", "origin", f"refs/heads/{branch}").split()
    return out[0] if out else None
