"""A branch edit re-renders the render root and commits it: uncommitted render inputs that the edit
did not make would leak into that commit, so they are refused and nothing is written."""

from __future__ import annotations

import shutil
from typing import Callable

import pytest
from click.testing import Result

from tests.registry.conftest import GitRepo
from tests.registry.edit_support import repo, retrain, state  # noqa: F401


def _promote_ready(repo: GitRepo, invoke: Callable[..., Result]) -> None:
    """iris 1.1.0 committed, so `promote iris --to prod` has a newer version to pin."""
    retrain(repo)
    assert invoke("bump", "iris").exit_code == 0
    repo.commit("iris 1.1.0")


DIRTY = {
    "a value in another deployment": ("deployments/prod/digits.yaml", "maxReplicas: 20", "maxReplicas: 42"),
    "a comment in another deployment": (
        "deployments/prod/digits.yaml",
        "kind: Deployment\n",
        "kind: Deployment\n# a note\n",
    ),
    "a comment in gitops-ml.yaml": ("gitops-ml.yaml", "name: example-models\n", "name: example-models  # note\n"),
    "another model's files": ("models/digits/model.yaml", "description:", "# a note\ndescription:"),
    "a hand edit of the render root": ("deploy/apps/prod/digits/hpa.yaml", "maxReplicas: 20", "maxReplicas: 42"),
}


@pytest.mark.parametrize("verb", ["bump", "promote"])
@pytest.mark.parametrize("dirty", list(DIRTY), ids=list(DIRTY))
def test_a_branch_edit_refuses_uncommitted_render_inputs_it_did_not_make(
    repo: GitRepo, invoke: Callable[..., Result], verb: str, dirty: str
) -> None:
    _promote_ready(repo, invoke)
    rel, old, new = DIRTY[dirty]
    repo.replace(rel, old, new)
    before = state(repo)
    args = (
        ("bump", "iris", "--patch", "--branch", "bump-iris")
        if verb == "bump"
        else ("promote", "iris", "--to", "prod", "--branch", "pp")
    )
    result = invoke(*args)
    assert result.exit_code == 4, result.output
    assert f"error: uncommitted changes in {rel}" in result.stderr
    assert "deploy/" in result.stderr and "commit or stash them" in result.stderr
    assert state(repo) == before  # nothing written, no branch, no commit, same index


def test_an_untracked_deployment_is_refused_too(repo: GitRepo, invoke: Callable[..., Result]) -> None:
    shutil.copy(repo.path / "deployments/prod/digits.yaml", repo.path / "deployments/staging/digits.yaml")
    before = state(repo)
    result = invoke("bump", "iris", "--patch", "--branch", "bump-iris")
    assert result.exit_code == 4
    assert "uncommitted changes in deployments/staging/digits.yaml" in result.stderr
    assert state(repo) == before


def test_the_models_own_new_files_are_still_committed(repo: GitRepo, invoke: Callable[..., Result]) -> None:
    retrain(repo)  # a training job's output in the model directory is part of the version
    result = invoke("bump", "iris", "--branch", "bump-iris")
    assert result.exit_code == 0, result.output
    assert state(repo)[3] == ""
    assert invoke("render", "--check").exit_code == 0
