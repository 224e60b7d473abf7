"""Which canaries a pull request's check runs: every canary the working tree declares, and with a
base revision the canary a promotion ends; never the one a rollback removes."""

from __future__ import annotations

import subprocess
from pathlib import Path

from rollout.conftest import Analysis, run

from gitops_ml.repo.handle import Repository
from gitops_ml.rollout.status import canary_targets
from gitops_ml.validate.rules import require_specs


def test_a_promotion_is_gated_on_the_canary_it_ends_and_a_rollback_is_not(analysis: Analysis, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(analysis.repo), str(clone)], check=True)
    deployments = clone / "deployments"
    good = (deployments / "good" / "iris.yaml").read_text()
    start, end = good.index("model: iris@1.0.0"), good.index("requests:")
    (deployments / "good" / "iris.yaml").write_text(good[:start] + "model: iris@1.1.0\n" + good[end:])  # promoted
    errors = (deployments / "errors" / "iris.yaml").read_text()
    start, end = errors.index("rollout:"), errors.index("requests:")
    (deployments / "errors" / "iris.yaml").write_text(errors[:start] + errors[end:])  # rolled back
    repository = Repository.open(clone)
    specs = require_specs(repository, "invalid")
    targets = {(dep.environment, path) for _, dep, path in canary_targets(repository, specs, base="HEAD")}
    assert targets == {
        ("slow", "deployments/slow/iris.yaml"),
        ("shifted", "deployments/shifted/iris.yaml"),
        ("quiet", "deployments/quiet/iris.yaml"),
        ("good", "deployments/good/iris.yaml at HEAD"),
    }
    result = run(
        "canary", "status", "--all", "--env", "good", "--prometheus", "http://127.0.0.1:1", "--repo", str(clone)
    )
    assert result.exit_code == 2 and "--all takes no MODEL and no --env" in result.stderr
