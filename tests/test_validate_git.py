"""`validate` in a git repository: a pin must name a version that some commit registered."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from support import EXAMPLE


def _gitops_ml(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gitops_ml", *args, str(repo)], capture_output=True, text=True, check=False)


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def test_pin_to_a_version_that_never_existed(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLE, repo)
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
    assert f"deployments/prod/iris.yaml:{line}:8: version 0.5.0 of model 'iris' does not exist in git history" in result.stderr
    assert "gitops-ml history iris" in result.stderr

    # without git there is no history to ask: the schema and cross-file rules still apply
    plain = tmp_path / "plain"
    shutil.copytree(repo, plain, ignore=shutil.ignore_patterns(".git"))
    assert _gitops_ml(plain, "validate").returncode == 0
