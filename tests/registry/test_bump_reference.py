"""`bump --reference FILE`: the new version carries a new reference profile; model.yaml keeps its
comments, a profile that is not one (or not this model's, or reads inputs the schema lacks) is a
located error and nothing is written, and a failed edit leaves no new file behind."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Callable

from click.testing import Result
from support import EXAMPLE

from tests.registry.conftest import GitRepo
from tests.registry.edit_support import IRIS, repo, retrain, state  # noqa: F401

PROFILE = "models/iris/reference.json"


def _profile(
    repo: GitRepo, tmp_path: Path, change: Callable[[dict], None] | None = None, name: str = "new.json"
) -> Path:
    # the example's current iris profile; the one-version copy (iris 1.0.0) has none yet
    data = json.loads((EXAMPLE / PROFILE).read_text())
    data["rows"] = 4242
    data["source"] = "retrain-2026-12.csv"
    if change is not None:
        change(data)
    path = tmp_path / name
    path.write_text(json.dumps(data, indent=1) + "\n")
    return path


def test_bump_replaces_the_reference_profile_and_keeps_model_yaml_comments(
    repo: GitRepo, invoke: Callable[..., Result], tmp_path: Path
) -> None:
    repo.write(PROFILE, (EXAMPLE / PROFILE).read_text())
    repo.write(IRIS, repo.read(IRIS) + "reference: reference.json  # what monitor compares traffic with\n")
    repo.commit("a reference profile")
    retrain(repo)
    new = _profile(repo, tmp_path)
    result = invoke("bump", "iris", "--reference", new)
    assert result.exit_code == 0, result.output
    assert json.loads(repo.read(PROFILE))["rows"] == 4242
    assert repo.read(PROFILE) == new.read_text()
    assert "reference: reference.json  # what monitor compares traffic with\n" in repo.read(IRIS)
    assert f"edited {PROFILE}" in result.stdout


def test_a_model_without_a_reference_gets_reference_json(
    repo: GitRepo, invoke: Callable[..., Result], tmp_path: Path
) -> None:
    new = _profile(repo, tmp_path)
    assert "reference:" not in repo.read(IRIS)
    retrain(repo)
    result = invoke("bump", "iris", "--reference", new)
    assert result.exit_code == 0, result.output
    assert repo.read(IRIS).endswith("reference: reference.json\n")
    assert json.loads(repo.read(PROFILE))["source"] == "retrain-2026-12.csv"
    validate = invoke("validate", ".")
    assert validate.exit_code == 0, validate.output


def test_a_profile_that_breaks_its_schema_is_a_located_error_and_writes_nothing(
    repo: GitRepo, invoke: Callable[..., Result], tmp_path: Path
) -> None:
    retrain(repo)
    before = state(repo)
    bad = _profile(repo, tmp_path, lambda d: d["features"][1].update(count="many"))
    result = invoke("bump", "iris", "--reference", bad)
    assert result.exit_code != 0
    line = next(n for n, text in enumerate(bad.read_text().splitlines(), 1) if '"count": "many"' in text)
    assert f"{bad}:{line}:" in result.stderr and "not a reference profile: features.1.count" in result.stderr
    assert "Traceback" not in result.output
    assert state(repo) == before


def test_another_models_profile_or_unknown_inputs_are_refused(
    repo: GitRepo, invoke: Callable[..., Result], tmp_path: Path
) -> None:
    retrain(repo)
    before = state(repo)
    other = _profile(repo, tmp_path, lambda d: d.update(model="digits"), "other.json")
    result = invoke("bump", "iris", "--reference", other)
    assert result.exit_code != 0 and f"{other}:4:" in result.stderr
    assert "reference profile of model 'digits', not 'iris'" in result.stderr

    def rename(d: dict) -> None:
        d["features"][2]["path"] = "measurements[*][2]"

    renamed = _profile(repo, tmp_path, rename, "renamed.json")
    result = invoke("bump", "iris", "--reference", renamed)
    assert result.exit_code != 0
    assert "feature 'petal_length' reads input 'measurements', which the schema does not declare" in result.stderr
    line = next(n for n, text in enumerate(renamed.read_text().splitlines(), 1) if "measurements[*][2]" in text)
    assert f"{renamed}:{line}:" in result.stderr
    missing = invoke("bump", "iris", "--reference", tmp_path / "nope.json")
    assert missing.exit_code == 2 and "does not exist" in missing.stderr
    assert state(repo) == before


def test_a_failed_edit_removes_the_profile_it_created(
    repo: GitRepo, invoke: Callable[..., Result], tmp_path: Path
) -> None:
    new = _profile(repo, tmp_path)
    retrain(repo)
    # the push fails (no such remote branch can be written: origin is gone), after the files were written
    repo.git("remote", "set-url", "origin", str(tmp_path / "gone.git"))
    result = invoke("bump", "iris", "--reference", new, "--push")
    assert result.exit_code != 0
    assert not (repo.path / PROFILE).exists()
    assert "reference:" not in repo.read(IRIS)


def test_a_bump_killed_after_writing_a_new_profile_is_undone_by_the_next_edit(
    repo: GitRepo, invoke: Callable[..., Result], tmp_path: Path
) -> None:
    from tests.registry.test_bump_hardening import KILLED_BUMP

    new = _profile(repo, tmp_path)
    retrain(repo)
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_BUMP, "bump", "iris", "--reference", str(new)],
        cwd=repo.path,
        capture_output=True,
        text=True,
    )
    assert killed.returncode == 137, killed.stderr
    assert (repo.path / PROFILE).is_file()  # written, then killed before the render finished
    again = invoke("bump", "iris")
    assert again.exit_code == 0, again.output
    assert "an earlier edit was interrupted; undid it" in again.stderr
    assert not (repo.path / PROFILE).exists() and "reference:" not in repo.read(IRIS)
    assert "version: 1.1.0" in repo.read(IRIS)
