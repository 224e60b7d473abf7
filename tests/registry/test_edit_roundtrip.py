"""Round trip over YAML full of comments, anchors, flow style and odd quoting: `git diff` of an edit
is exactly the intended lines, and edits that cannot be made in place are refused."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

import pytest
from click.testing import Result

from gitops_ml.errors import EditError
from gitops_ml.repo.editing import DeleteKey, SetValue, edit_text
from tests.registry.conftest import GitRepo

NASTY_MODEL = """\
# yaml-language-server: $schema=../../.gitops-ml/schemas/model.schema.json
# Owned by the ML team.   Keep this header.
---
apiVersion: "gitops-ml.dev/v1"   # quoted on purpose
kind: 'Model'
name: iris
version: '1.0.0'    # set by `gitops-ml bump`

description: >-
  Iris species from sepal and petal
  measurements.
framework: {name: scikit-learn, version: "1.9"}   # flow style
artifact:
    uri: model.joblib      # relative to this directory
    sha256: "b65497ba5ff3bb54f4c4ac5ea216191e2526fb4c535402642f3184bea58ed809"


metrics: {accuracy: 0.9778,   f1: 0.95}
labels: &labels
    team:   ml
    tier: "gold"
lineage:
    data: sklearn.datasets.load_iris   # public data
    runId: "train-iris-001"
    # the trainer is set by CI
"""


@pytest.fixture
def nasty(git_repo: Callable[..., GitRepo], chdir: Callable[[Path], None]) -> GitRepo:
    repo = git_repo()
    repo.write("models/iris/model.yaml", NASTY_MODEL)
    repo.commit("a model.yaml written by a person")
    chdir(repo.path)
    return repo


def changed_lines(repo: GitRepo, rel: str) -> list[str]:
    diff = repo.git("diff", "-U0", "--", rel)
    return [line for line in diff.splitlines() if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def test_bump_diff_is_exactly_the_version_lines(nasty: GitRepo, invoke: Callable[..., Result]) -> None:
    nasty.write("models/iris/model.joblib", b"new weights")
    metrics = nasty.path.parent / "m.json"
    metrics.write_text('{"accuracy": 0.99, "f1": 0.95}')
    result = invoke("bump", "iris", "--metrics", metrics)
    assert result.exit_code == 0, result.output
    sha = hashlib.sha256(b"new weights").hexdigest()
    assert changed_lines(nasty, "models/iris/model.yaml") == [
        "-version: '1.0.0'    # set by `gitops-ml bump`",
        "+version: '1.1.0'    # set by `gitops-ml bump`",
        '-    sha256: "b65497ba5ff3bb54f4c4ac5ea216191e2526fb4c535402642f3184bea58ed809"',
        f'+    sha256: "{sha}"',
        "-metrics: {accuracy: 0.9778,   f1: 0.95}",
        "+metrics: {accuracy: 0.99,   f1: 0.95}",
    ]
    assert invoke("validate").exit_code == 0


def test_promote_diff_is_exactly_the_pin_line(
    git_repo: Callable[..., GitRepo], chdir: Callable[[Path], None], invoke: Callable[..., Result]
) -> None:
    repo = git_repo()
    repo.write("models/iris/model.joblib", b"v2")
    chdir(repo.path)
    assert invoke("bump", "iris").exit_code == 0
    repo.commit("iris 1.1.0")
    deployment = "deployments/prod/iris.yaml"
    repo.write(
        deployment,
        repo.read(deployment).replace("model: iris@1.0.0\n", 'model: "iris@1.0.0"   # pinned: promote by PR\n'),
    )
    repo.commit("quote the pin")
    assert invoke("promote", "iris", "--to", "prod").exit_code == 0
    assert changed_lines(repo, deployment) == [
        '-model: "iris@1.0.0"   # pinned: promote by PR',
        '+model: "iris@1.1.0"   # pinned: promote by PR',
    ]


def test_new_keys_follow_the_files_indentation_and_style() -> None:
    text = "a: 1\nmetrics:\n    acc: 0.5   # old\n# trailing comment\nz: {x: 1}\n"
    out = edit_text(text, [SetValue(("metrics", "f1"), 0.7), SetValue(("z", "y"), "two words"), DeleteKey(("a",))])
    assert out == "metrics:\n    acc: 0.5   # old\n    f1: 0.7\n# trailing comment\nz: {x: 1, y: two words}\n"


def test_a_missing_mapping_is_added_at_the_end() -> None:
    out = edit_text("name: iris\nversion: 1.0.0\n", [SetValue(("metrics", "accuracy"), 0.9)])
    assert out == "name: iris\nversion: 1.0.0\nmetrics:\n  accuracy: 0.9\n"


def test_strings_that_would_change_type_are_quoted() -> None:
    out = edit_text("a: x\nb: 'y'\n", [SetValue(("a",), "1.0"), SetValue(("b",), "it's")])
    assert out == "a: \"1.0\"\nb: 'it''s'\n"


def test_anchored_values_are_refused() -> None:
    text = "artifact:\n  sha256: &d abc\nlineage:\n  data: *d\n"
    with pytest.raises(EditError, match="shared through a YAML anchor"):
        edit_text(text, [SetValue(("artifact", "sha256"), "def")])
    # an anchor on a value that no alias uses is only a name: the value after it is edited
    assert edit_text("v: &ver 1.0.0\n", [SetValue(("v",), "1.1.0")]) == "v: &ver 1.1.0\n"


def test_block_scalars_are_refused_not_reformatted() -> None:
    with pytest.raises(EditError, match="not a one-line value"):
        edit_text("description: |\n  two\n  lines\n", [SetValue(("description",), "one")])
