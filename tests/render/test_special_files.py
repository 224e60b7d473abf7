"""Files in a model directory that are not regular files (an editor's dangling lock link, a FIFO)
are not inputs: render, render --check and diff --base skip them, as validate does, and never open
them. The CLI runs as a process here, so that a FIFO opened by mistake fails the test instead of
hanging it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

from render.render_helpers import Repo, run

GITOPS_ML = [sys.executable, "-m", "gitops_ml"]
COMMANDS = (
    ("validate",),
    ("render", "--check"),
    ("render", "--check", "--incremental"),
    ("render",),
    ("render", "--incremental"),
    ("diff", "--base", "HEAD", "--exit-code"),
)


def gitops_ml(repo: Repo, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [*GITOPS_ML, *args[:1], str(repo.path), *args[1:]]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=repo.path)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"`gitops-ml {' '.join(args)}` did not finish (a FIFO was opened?)") from None


def rendered_and_committed(example_repo: Callable[[], Repo]) -> Repo:
    repo = example_repo()
    assert run("render", repo.path).exit_code == 0
    repo.commit("initial")
    return repo


def assert_nothing_changes(repo: Repo) -> None:
    tree = {p: p.read_bytes() for p in sorted((repo.path / "deploy").rglob("*")) if p.is_file()}
    for args in COMMANDS:
        proc = gitops_ml(repo, *args)
        assert proc.returncode == 0, (args, proc.stderr)
        assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr
        if args[0] == "render" and "--check" not in args:
            assert ": 0 file(s) written, 0 removed" in proc.stdout, proc.stdout
    assert {p: p.read_bytes() for p in sorted((repo.path / "deploy").rglob("*")) if p.is_file()} == tree


def test_a_dangling_editor_lock_link_is_not_a_file(example_repo: Callable[[], Repo]) -> None:
    repo = rendered_and_committed(example_repo)
    os.symlink("user@host.1234:1700000000", repo.path / "models/iris/.#model.yaml")
    assert_nothing_changes(repo)


def test_a_fifo_in_a_model_directory_is_never_opened(example_repo: Callable[[], Repo]) -> None:
    repo = rendered_and_committed(example_repo)
    os.mkfifo(repo.path / "models/iris/fifo")
    os.mkfifo(repo.path / "deployments/staging/fifo.yaml")
    assert_nothing_changes(repo)


def test_a_link_to_a_file_in_the_model_directory_is_its_content(example_repo: Callable[[], Repo]) -> None:
    repo = rendered_and_committed(example_repo)
    model = repo.path / "models/iris"
    (model / "notes.txt").write_text("v1\n")
    os.symlink("notes.txt", model / "notes-link.txt")
    assert run("render", repo.path).exit_code == 0
    kustomization = repo.path / "deploy/apps/staging/iris/kustomization.yaml"
    before = kustomization.read_bytes()
    (model / "notes.txt").write_text("v2\n")  # both the file and the link change the image digest
    for args in (("--check", "--incremental"), ("--check",)):
        result = run("render", repo.path, *args)
        assert result.exit_code == 1 and "deploy/apps/staging/iris/kustomization.yaml: differs" in result.stderr
    assert run("render", repo.path).exit_code == 0
    assert kustomization.read_bytes() != before


def test_a_fifo_in_the_render_root_is_stale_not_opened(example_repo: Callable[[], Repo]) -> None:
    repo = rendered_and_committed(example_repo)
    target = repo.path / "deploy/apps/prod/iris/pdb.yaml"
    original = target.read_bytes()
    target.unlink()
    os.mkfifo(target)
    for args in (("render", "--check"), ("render", "--check", "--incremental")):
        proc = gitops_ml(repo, *args)
        assert proc.returncode == 1, proc.stderr
        assert "error: deploy/apps/prod/iris/pdb.yaml: differs from what `gitops-ml render` writes" in proc.stderr
    proc = gitops_ml(repo, "render")
    assert proc.returncode == 0, proc.stderr
    assert Path(target).is_file() and target.read_bytes() == original
