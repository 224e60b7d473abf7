"""`validate` in a git repository: a pin must name a version that some commit registered."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

from support import copy_example


def _gitops_ml(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gitops_ml", *args, str(repo)], capture_output=True, text=True, check=False
    )


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def test_pin_to_a_version_that_never_existed(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    copy_example(repo)
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "iris 1.0.0")
    model = repo / "models/iris/model.yaml"
    model.write_text(model.read_text().replace("version: 1.0.0", "version: 1.1.0"))
    _git(repo, "commit", "-qam", "iris 1.1.0")
    prod = repo / "deployments/prod/iris.yaml"
    assert "model: iris@1.0.0" in prod.read_text()
    assert _gitops_ml(repo, "validate").returncode == 0, "1.0.0 is older than 1.1.0 and was registered"

    prod.write_text(prod.read_text().replace("model: iris@1.0.0", "model: iris@0.5.0"))
    result = _gitops_ml(repo, "validate")
    assert result.returncode == 1
    line = next(n for n, text in enumerate(prod.read_text().splitlines(), 1) if text.startswith("model:"))
    assert (
        f"deployments/prod/iris.yaml:{line}:8: version 0.5.0 of model 'iris' does not exist in git history"
        in result.stderr
    )
    assert "gitops-ml history iris" in result.stderr

    # without git there is no history to ask: the schema and cross-file rules still apply
    plain = tmp_path / "plain"
    shutil.copytree(repo, plain, ignore=shutil.ignore_patterns(".git"))
    assert _gitops_ml(plain, "validate").returncode == 0


def test_links_out_of_the_model_directory_and_files_that_are_not_files(tmp_path: Path) -> None:
    import os

    repo = tmp_path / "repo"
    copy_example(repo)
    iris = repo / "models" / "iris"
    outside = tmp_path / "sample.json"
    (iris / "sample.json").rename(outside)
    (iris / "sample.json").symlink_to(outside)
    result = _gitops_ml(repo, "validate")
    assert result.returncode == 1
    assert (
        f"error: models/iris/sample.json: symbolic link to {outside}, outside the model directory models/iris/"
        in result.stderr
    )

    # the same link committed: history is read as git stores it, and says the same
    (iris / "sample.json").unlink()
    outside.rename(iris / "sample.json")
    (iris / "notes.txt").symlink_to("../../gitops-ml.yaml")
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "a link")
    from gitops_ml.adapters import git as gitx

    assert gitx.commit_tree(repo, "HEAD").links_outside("models/iris") == [
        ("models/iris/notes.txt", "../../gitops-ml.yaml")
    ]
    (iris / "notes.txt").unlink()
    (iris / "notes.txt").symlink_to("sample.json")  # inside the directory: fine
    # an editor's lock file (a dangling link) and a FIFO are not files: skipped, never opened
    (iris / ".#model.yaml").symlink_to("user@host.1234:1700000000")
    os.mkfifo(iris / "fifo")
    done = subprocess.run(
        [sys.executable, "-m", "gitops_ml", "validate", str(repo)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_a_repository_without_commits_says_so(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    copy_example(repo)
    _git(repo, "init", "-q", "-b", "main")
    for args in (("models",), ("validate", "--base", "HEAD")):
        result = subprocess.run(
            [sys.executable, "-m", "gitops_ml", *args], cwd=repo, capture_output=True, text=True, check=False
        )
        assert result.returncode != 0
        assert "has no commits yet" in result.stderr and "commit the repository first" in result.stderr, result.stderr


def test_files_git_ignores_are_not_part_of_a_model_version(tmp_path: Path) -> None:
    """An ignored `.env` or checkpoint directory in a model directory changes neither the image tag nor
    the build context: CI's clean checkout would not have it."""
    import yaml

    repo = tmp_path / "repo"
    copy_example(repo)
    (repo / ".gitignore").write_text(".env\n.ipynb_checkpoints/\n")
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "example")

    def tag() -> str:
        result = _gitops_ml(repo, "render")
        assert result.returncode == 0, result.stderr
        doc = yaml.safe_load((repo / "deploy/apps/staging/iris/kustomization.yaml").read_text())
        return str(doc["images"][0]["newTag"])

    clean = tag()
    iris = repo / "models" / "iris"
    (iris / ".env").write_text("API_TOKEN=secret\n")
    (iris / ".ipynb_checkpoints").mkdir()
    (iris / ".ipynb_checkpoints" / "score-checkpoint.py").write_text("# scratch\n")
    assert tag() == clean
    context = tmp_path / "ctx"
    built = subprocess.run(
        [sys.executable, "-m", "gitops_ml", "build", str(repo), "--model", "iris", "--context-only", str(context)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    with tarfile.open(context / "iris" / "layers" / "code.tar") as layer:  # the scoring code's layer
        shipped = {Path(name).name for name in layer.getnames()}
    assert ".env" not in shipped and "score-checkpoint.py" not in shipped and "score.py" in shipped
    # a new file git does not ignore is part of the next version, committed or not
    (iris / "notes.txt").write_text("v2\n")
    assert tag() != clean
