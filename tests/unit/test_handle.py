"""The repository handle: found upwards, gitops-ml.yaml read once, the working tree and a commit
behind one interface, derived values built once until the tree is written to."""

from __future__ import annotations

import subprocess
from pathlib import Path

from support import copy_example

from gitops_ml.repo.handle import Repository
from gitops_ml.types import REPOSITORY_FILE


def _copy(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    copy_example(repo, without=("deploy",))
    return repo


def _commit(repo: Path) -> None:
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True)
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run(["git", "commit", "-qm", "models"], cwd=repo, check=True)


def test_open_finds_the_repository_upwards_from_a_model_directory(tmp_path: Path) -> None:
    repo = _copy(tmp_path)
    assert Repository.open(repo / "models" / "iris").root == repo
    assert Repository.open(repo).root == repo


def test_open_outside_a_repository_keeps_the_path_and_knows_no_settings(tmp_path: Path) -> None:
    handle = Repository.open(tmp_path)
    assert handle.root == tmp_path
    assert handle.config is None
    assert handle.render_root == "deploy"  # what validation will then report as missing is not guessed


def test_settings_are_read_once_until_refresh(tmp_path: Path) -> None:
    repo = _copy(tmp_path)
    handle = Repository.open(repo)
    assert handle.config is not None and handle.render_root == "deploy"
    text = (repo / REPOSITORY_FILE).read_text()
    (repo / REPOSITORY_FILE).write_text(text.replace("renderRoot: deploy", "renderRoot: rendered"))
    assert handle.render_root == "deploy"  # one verb sees one gitops-ml.yaml
    handle.refresh()
    assert handle.render_root == "rendered"


def test_a_commit_and_the_working_tree_answer_through_one_interface(tmp_path: Path) -> None:
    repo = _copy(tmp_path)
    _commit(repo)
    (repo / "models" / "iris" / "notes.txt").write_text("not committed\n")
    handle = Repository.open(repo)
    head, work = handle.at("HEAD"), handle.source()
    committed = head.walk_files("models/iris")
    assert "models/iris/notes.txt" in work.walk_files("models/iris")
    assert "models/iris/notes.txt" not in committed
    assert all(head.read(p) == work.read(p) for p in committed)
    assert handle.at("HEAD") is head  # one revision is resolved once


def test_remember_builds_once_and_refresh_forgets(tmp_path: Path) -> None:
    handle = Repository.open(_copy(tmp_path))
    calls: list[int] = []
    assert handle.remember("k", lambda: calls.append(1) or len(calls)) == 1
    assert handle.remember("k", lambda: calls.append(1) or len(calls)) == 1
    handle.refresh()
    assert handle.remember("k", lambda: calls.append(1) or len(calls)) == 2
