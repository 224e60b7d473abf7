"""bump with metrics that share no key with the old ones, with thousands of metric lines, and after
an earlier bump was killed between its edit and its re-render."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Callable

import yaml
from click.testing import Result

from tests.registry.conftest import GitRepo
from tests.registry.edit_support import IRIS, repo, retrain  # noqa: F401


def test_new_metrics_sharing_no_key_with_the_old_replace_them(
    repo: GitRepo, invoke: Callable[..., Result], tmp_path: Path
) -> None:
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"f1": 0.91, "auc": 0.97}))
    retrain(repo)
    result = invoke("bump", "iris", "--metrics", str(metrics))
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(repo.read(IRIS))["metrics"] == {"f1": 0.91, "auc": 0.97}
    assert invoke("validate").exit_code == 0


def test_thousands_of_metric_lines_are_edited_in_one_pass_and_keep_their_comments(
    repo: GitRepo, invoke: Callable[..., Result], tmp_path: Path
) -> None:
    lines = "".join(f"  m{i:04d}: {i / 10_000}  # run {i}\n" for i in range(3000))
    repo.write(IRIS, repo.read(IRIS).replace("metrics:\n  accuracy: 0.9778\n", "metrics:\n" + lines))
    repo.commit("3,000 metrics")
    new = {f"m{i:04d}": (i + 1) / 10_000 for i in range(1500, 4500)}  # half kept, half new
    (tmp_path / "metrics.json").write_text(json.dumps(new))
    retrain(repo)
    result = invoke("bump", "iris", "--metrics", str(tmp_path / "metrics.json"))
    assert result.exit_code == 0, result.output
    after = repo.read(IRIS)
    assert yaml.safe_load(after)["metrics"] == new
    assert "  m1500: 0.1501  # run 1500\n" in after  # kept lines keep their comments
    assert "m0001" not in after


KILLED_BUMP = """
import os, sys
from gitops_ml.render import service
from gitops_ml.cli.main import main

real = service.render_repository

def half(request):
    # the edit is written; the render root gets half of its new files, then kill -9
    result = real(service.RenderRequest(request.repo, check=True))
    stale = [d.path for d in result.changes.differences if not d.path.startswith(".")]
    (request.repo.render_dir / stale[0]).write_text("half")
    os._exit(137)

service.render_repository = half
main(sys.argv[1:])
"""


def test_a_bump_killed_between_edit_and_render_is_undone_by_the_next_edit(
    repo: GitRepo, invoke: Callable[..., Result]
) -> None:
    retrain(repo)
    before = repo.read(IRIS)
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_BUMP, "bump", "iris"], cwd=repo.path, capture_output=True, text=True
    )
    assert killed.returncode == 137, killed.stderr
    assert repo.read(IRIS) != before  # the edit was written, its render was not finished
    again = invoke("bump", "iris", "--branch", "gitops-ml/bump-iris")
    assert again.exit_code == 0, again.output
    assert "an earlier edit was interrupted; undid it" in again.stderr
    assert yaml.safe_load(repo.read(IRIS))["version"] == "1.1.0"  # bumped once, not twice
    assert invoke("render", "--check").exit_code == 0
