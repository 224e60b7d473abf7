"""`build --context-only DIR` writes every model's context or none of them."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from gitops_ml.build import context as building
from gitops_ml.cli.main import cli
from gitops_ml.errors import ArtifactError


def test_an_existing_target_stops_before_anything_is_written(example_repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "ctx"
    (out / "iris").mkdir(parents=True)
    (out / "iris" / "old.txt").write_text("keep\n")
    result = CliRunner().invoke(cli, ["build", str(example_repo), "--context-only", str(out)])
    assert result.exit_code == 3, result.output
    assert f"{out / 'iris'} already exists" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["iris"], "digits must not be written when iris cannot be"
    assert [p.name for p in (out / "iris").iterdir()] == ["old.txt"]


def test_a_failure_in_a_later_model_leaves_no_earlier_context(
    example_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = building.fetch_artifact

    def fetch(plan: building.ImagePlan, cache: Path, progress: building.Progress) -> Path:
        if plan.model == "iris":  # digits (first in sorted order) has been prepared by now
            raise ArtifactError("model iris: the artifact server went away")
        return real(plan, cache, progress)

    monkeypatch.setattr(building, "fetch_artifact", fetch)
    out = tmp_path / "ctx"
    out.mkdir()
    result = CliRunner().invoke(cli, ["build", str(example_repo), "--context-only", str(out)])
    assert result.exit_code == 6, result.output
    assert list(out.iterdir()) == [], "no context (and no temporary directory) is left"


def test_a_new_output_directory_is_not_left_behind_on_failure(
    example_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fetch(plan: building.ImagePlan, cache: Path, progress: building.Progress) -> Path:
        raise ArtifactError("model: the artifact server went away")

    monkeypatch.setattr(building, "fetch_artifact", fetch)
    out = tmp_path / "new" / "ctx"
    result = CliRunner().invoke(cli, ["build", str(example_repo), "--context-only", str(out)])
    assert result.exit_code == 6, result.output
    assert not out.exists()
