"""Re-running an edit replaces only what gitops-ml committed on its branch: commits someone else
made there (locally or on origin) are never discarded, and a push never overwrites a concurrent one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from click.testing import Result

from tests.registry.conftest import GitRepo, run_git
from tests.registry.edit_support import BRANCH, remote_sha, repo, retrain, state  # noqa: F401


def _reviewer_pushes_a_fixup(repo: GitRepo, tmp: Path) -> str:
    clone = tmp / "reviewer"
    run_git(tmp, "clone", "-q", "-b", BRANCH, str(repo.origin), str(clone))
    (clone / "models/iris/README.md").write_text("reviewed\n")
    run_git(clone, "add", "-A")
    run_git(
        clone,
        "-c",
        "user.name=Rita Reviewer",
        "-c",
        "user.email=rita@example.com",
        "commit",
        "-q",
        "-m",
        "reviewer fixup",
    )
    run_git(clone, "push", "-q", "origin", BRANCH)
    return run_git(clone, "rev-parse", "HEAD").strip()


def test_rerunning_a_bump_refuses_to_discard_a_reviewers_pushed_commit(
    repo: GitRepo, invoke: Callable[..., Result], tmp_path: Path
) -> None:
    retrain(repo)
    first = invoke("bump", "iris", "--branch", BRANCH, "--push")
    assert first.exit_code == 0, first.output
    assert "Gitops-ml-edit: bump iris" in repo.git("log", "-1", "--format=%B", BRANCH)
    fixup = _reviewer_pushes_a_fixup(repo, tmp_path)
    repo.git("switch", "-q", "main")
    retrain(repo)
    before = state(repo)
    again = invoke("bump", "iris", "--branch", BRANCH, "--push")
    assert again.exit_code == 4, again.output
    assert (
        f"error: branch '{BRANCH}' on origin has 1 commit that gitops-ml did not make: {fixup[:12]} reviewer fixup (Rita Reviewer)"
        in again.stderr
    )
    assert f"git push origin --delete {BRANCH}" in again.stderr and "--branch" in again.stderr
    assert remote_sha(repo) == fixup  # the reviewer's commit is still there
    assert state(repo) == before


def test_rerunning_refuses_to_reset_a_local_branch_with_someone_elses_commit(
    repo: GitRepo, invoke: Callable[..., Result]
) -> None:
    retrain(repo)
    assert invoke("bump", "iris", "--branch", BRANCH).exit_code == 0
    repo.write("notes.txt", "mine\n")
    mine = repo.commit("my own work on the branch")
    repo.git("switch", "-q", "main")
    retrain(repo)
    before = state(repo)
    again = invoke("bump", "iris", "--branch", BRANCH)
    assert again.exit_code == 4
    assert (
        f"local branch '{BRANCH}' has 1 commit that gitops-ml did not make: {mine[:12]} my own work on the branch"
        in again.stderr
    )
    assert f"git branch -D {BRANCH}" in again.stderr
    assert repo.git("rev-parse", BRANCH).strip() == mine
    assert state(repo) == before


def test_a_push_that_races_another_push_never_overwrites_it(
    repo: GitRepo, invoke: Callable[..., Result], tmp_path: Path
) -> None:
    retrain(repo)
    assert invoke("bump", "iris", "--branch", BRANCH, "--push").exit_code == 0
    repo.git("switch", "-q", "main")
    # someone pushes to the branch after gitops-ml looked at origin and before it pushes: the
    # local reference-transaction hook fires when gitops-ml moves its local branch
    racer = tmp_path / "racer"
    run_git(tmp_path, "clone", "-q", "-b", BRANCH, str(repo.origin), str(racer))
    (racer / "race.txt").write_text("raced\n")
    run_git(racer, "add", "-A")
    run_git(racer, "commit", "-q", "-m", "racing commit")
    hook = repo.path / ".git" / "hooks" / "reference-transaction"
    hook.write_text(
        "#!/bin/sh\n"
        f'[ "$1" = committed ] && grep -q " refs/heads/{BRANCH}$" && [ ! -e "{tmp_path}/raced" ] || exit 0\n'
        f'touch "{tmp_path}/raced"\n'
        "unset $(git rev-parse --local-env-vars)\n"  # git sets GIT_DIR for hooks; the racer is another repository
        f'git -C "{racer}" push -q origin {BRANCH} >/dev/null 2>&1\n'
    )
    hook.chmod(0o755)
    retrain(repo, b"other weights")
    result = invoke("bump", "iris", "--branch", BRANCH, "--push")
    assert (tmp_path / "raced").exists()
    assert result.exit_code == 5, result.output
    assert "changed on origin while gitops-ml was running" in result.stderr
    assert remote_sha(repo) == run_git(racer, "rev-parse", "HEAD").strip()
    assert repo.git("branch", "--show-current").strip() == "main"


def test_gitops_mls_own_earlier_commit_on_origin_is_replaced(
    repo: GitRepo, invoke: Callable[..., Result], tmp_path: Path
) -> None:
    retrain(repo)
    first = json.loads(invoke("bump", "iris", "--branch", BRANCH, "--push", "--format", "json").stdout)
    repo.git("switch", "-q", "main")
    repo.git("branch", "-D", BRANCH)  # a fresh CI checkout has no local branch
    retrain(repo, b"other weights")
    again = invoke("bump", "iris", "--branch", BRANCH, "--push", "--format", "json")
    assert again.exit_code == 0, again.output
    data = json.loads(again.stdout)
    assert data["commit"] != first["commit"] and remote_sha(repo) == data["commit"]
    # the same output once more, with no local branch: origin's commit is reused, not remade
    repo.git("switch", "-q", "main")
    repo.git("branch", "-D", BRANCH)
    retrain(repo, b"other weights")
    third = json.loads(invoke("bump", "iris", "--branch", BRANCH, "--push", "--format", "json").stdout)
    assert (third["commit"], third["commitCreated"]) == (data["commit"], False)
