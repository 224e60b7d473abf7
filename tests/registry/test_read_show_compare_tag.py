"""`show`, `compare` and `tag` on real repositories, and pins resolved from git for render and build."""

from __future__ import annotations

import hashlib
import json

import pytest
from support import copy_example

from gitops_ml.registry.versions import resolve_model_version
from gitops_ml.repo.handle import Repository
from gitops_ml.repo.loading import load_tree
from gitops_ml.repo.sources import WorkTree
from gitops_ml.types import ModelName, Version
from gitops_ml.validate.rules import validate_tree

NEW_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["data", "units"],
    "properties": {"data": {"type": "array"}, "units": {"type": "string"}},
}


@pytest.fixture
def iris_repo(git_repo):
    """iris 1.0.0 -> 1.1.0 (new artifact, metrics, scikit-learn upgrade) -> 2.0.0 (breaking schema)."""
    repo = git_repo()
    repo.set_model("iris", "1.1.0", artifact=b"weights-1.1", metrics={"accuracy": 0.98, "f1": 0.9})
    repo.write("models/iris/requirements.txt", "scikit-learn==1.9.2\njoblib>=1.3\nnumpy>=1.26\npandas>=2.0  # new\n")
    repo.commit("iris: retrain")
    repo.set_model("iris", "2.0.0")
    repo.write("models/iris/schema.json", json.dumps(NEW_SCHEMA, indent=2))
    repo.write("models/iris/sample.json", json.dumps({"data": [[1, 2, 3, 4]], "units": "cm"}))
    repo.commit("iris: new input")
    return repo


def test_show_reads_the_version_from_its_commit_not_the_working_tree(iris_repo, invoke):
    result = invoke("show", "iris@1.1.0", "--repo", iris_repo.path, "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["version"] == "1.1.0"
    assert data["commit"]["sha"] == iris_repo.shas[1]
    assert data["artifact"] == {"uri": "model.joblib", "sha256": hashlib.sha256(b"weights-1.1").hexdigest()}
    assert data["metrics"] == {"accuracy": 0.98, "f1": 0.9}
    assert data["lineage"] == {"data": "sklearn.datasets.load_iris", "runId": "train-iris-001"}
    files = {f["path"]: f["size"] for f in data["files"]}
    assert files["model.joblib"] == len(b"weights-1.1")
    assert sorted(files) == [
        "manifest.yaml",
        "model.joblib",
        "model.yaml",
        "requirements.txt",
        "sample.json",
        "schema.json",
        "score.py",
    ]
    assert data["image"].startswith("registry.example.com/ml/iris:1.1.0-")
    assert data["running"] == []  # staging moved on to 2.0.0; prod still pins 1.0.0


def test_show_image_reference_is_the_one_render_and_build_compute(iris_repo, invoke):
    data = json.loads(invoke("show", "iris@1.0.0", "--repo", iris_repo.path, "--format", "json").stdout)
    specs = validate_tree(load_tree(WorkTree(iris_repo.path))).specs
    assert specs is not None
    mv = resolve_model_version(Repository(iris_repo.path), specs, ModelName("iris"), Version.parse("1.0.0"))
    assert mv.commit == iris_repo.shas[0]
    assert data["image"] == mv.image_ref(specs.repository)
    assert [r["environment"] for r in data["running"]] == ["prod"]


def test_show_text_names_commit_tag_image_and_environments(iris_repo, invoke):
    invoke("tag", iris_repo.path)
    lines = invoke("show", "iris@v1.0.0", "--repo", iris_repo.path).stdout.splitlines()
    assert lines[0] == "iris@1.0.0"
    assert f"  commit     {iris_repo.shas[0][:12]}  2024-01-01T12:00:00+00:00  Ada Lovelace <ada@example.com>" in lines
    assert "  tag        iris@v1.0.0" in lines
    assert "  running    prod (since 2024-01-01)" in lines
    assert any(line.startswith("  image      registry.example.com/ml/iris:1.0.0-") for line in lines)


@pytest.mark.parametrize(
    ("argument", "code", "message", "hint"),
    [
        (
            "iris@1.3.0",
            4,
            "error: version 1.3.0 of model 'iris' is not in git history at HEAD",
            "hint: did you mean iris@1.1.0? known versions: 1.0.0, 1.1.0, 2.0.0",
        ),
        ("irsi@1.0.0", 4, "error: unknown model 'irsi'", "hint: did you mean 'iris'?"),
        ("iris", 2, "error: expected MODEL@VERSION such as iris@1.2.0, got 'iris'", None),
        ("iris@latest", 2, "error: expected MODEL@VERSION such as iris@1.2.0, got 'iris@latest'", None),
    ],
)
def test_show_refuses_what_does_not_exist_with_a_hint(iris_repo, invoke, argument, code, message, hint):
    result = invoke("show", argument, "--repo", iris_repo.path)
    assert result.exit_code == code
    assert result.stdout == ""
    assert result.stderr.splitlines() == [message] + ([hint] if hint else [])


def test_compare_reports_metrics_dependencies_artifact_and_files(iris_repo, invoke):
    result = invoke("compare", "iris@1.0.0", "iris@1.1.0", "--repo", iris_repo.path)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "iris 1.0.0 -> 1.1.0",
        "metrics",
        "  accuracy  0.9778 -> 0.98  (+0.0022)",
        "  f1  - -> 0.9",
        "input schema: unchanged",
        "dependencies",
        "  + pandas>=2.0",
        "  scikit-learn==1.9.1 -> scikit-learn==1.9.2",
        f"artifact: model.joblib sha256:b65497ba5ff3 -> model.joblib sha256:{hashlib.sha256(b'weights-1.1').hexdigest()[:12]}",
        "files changed: model.joblib, model.yaml, requirements.txt",
    ]


def test_compare_json_flags_a_breaking_schema_change(iris_repo, invoke):
    result = invoke("compare", "iris@1.1.0", "2.0.0", "--repo", iris_repo.path, "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["old"] == {"version": "1.1.0", "commit": iris_repo.shas[1]}
    assert data["new"] == {"version": "2.0.0", "commit": iris_repo.shas[2]}
    assert data["schema"]["changed"] is True
    assert data["schema"]["breaking"] is True
    assert "$.units: now required" in data["schema"]["breaks"]
    assert data["artifact"]["changed"] is False
    assert data["dependencies"] == []
    assert data["files"] == {"added": [], "removed": [], "changed": ["model.yaml", "sample.json", "schema.json"]}


def test_compare_of_two_models_is_a_usage_error(iris_repo, invoke):
    result = invoke("compare", "iris@1.0.0", "digits@1.0.0", "--repo", iris_repo.path)
    assert result.exit_code == 2
    assert "error: compare two versions of one model, not iris and digits" in result.stderr


def test_tag_creates_annotated_gto_tags_once_and_pushes_them(iris_repo, invoke):
    result = invoke("tag", iris_repo.path, "--push")
    assert result.exit_code == 0, result.output
    first, second, third = iris_repo.shas
    assert result.stdout.splitlines() == [
        f"created digits@v1.0.0 -> {first[:12]}",
        f"created iris@v1.0.0 -> {first[:12]}",
        f"created iris@v1.1.0 -> {second[:12]}",
        f"created iris@v2.0.0 -> {third[:12]}",
        "4 tag(s) created and pushed to origin, 0 already in place",
    ]
    assert iris_repo.tags() == {
        "digits@v1.0.0": first,
        "iris@v1.0.0": first,
        "iris@v1.1.0": second,
        "iris@v2.0.0": third,
    }
    assert iris_repo.git("cat-file", "-t", "iris@v1.1.0").strip() == "tag"
    assert (
        iris_repo.git("tag", "-l", "--format=%(contents:subject)", "iris@v1.1.0").strip()
        == "Registering artifact iris version v1.1.0"
    )
    remote = iris_repo.git("ls-remote", "--tags", "origin").split()
    assert "refs/tags/iris@v2.0.0" in remote

    again = invoke("tag", iris_repo.path, "--format", "json")
    assert again.exit_code == 0
    assert json.loads(again.stdout) == {"created": [], "existing": 4, "dryRun": False, "pushed": False}


def test_tag_only_adds_what_is_missing_and_dry_run_creates_nothing(iris_repo, invoke):
    iris_repo.git("tag", "-a", "iris@v1.0.0", iris_repo.shas[0], "-m", "by hand")
    dry = invoke("tag", iris_repo.path, "--dry-run")
    assert dry.stdout.splitlines()[-1] == "3 tag(s) would be created, 1 already in place"
    assert set(iris_repo.tags()) == {"iris@v1.0.0"}
    assert invoke("tag", iris_repo.path).stdout.splitlines()[-1] == "3 tag(s) created, 1 already in place"


def test_tag_refuses_to_move_a_tag_that_points_elsewhere(iris_repo, invoke):
    iris_repo.git("tag", "iris@v1.1.0", iris_repo.shas[2])  # wrong commit
    result = invoke("tag", iris_repo.path)
    assert result.exit_code == 4
    assert result.stderr.splitlines()[0] == (
        f"error: 1 tag(s) point at the wrong commit; refusing to move them: iris@v1.1.0 points at "
        f"{iris_repo.shas[2][:12]}, but {iris_repo.shas[1][:12]} registered that version"
    )
    assert result.stderr.splitlines()[1].startswith("hint: tags are never moved")
    assert set(iris_repo.tags()) == {"iris@v1.1.0"}  # nothing created, nothing moved
    assert iris_repo.tags()["iris@v1.1.0"] == iris_repo.shas[2]


def test_resolve_prefers_a_tag_and_falls_back_to_history(iris_repo):
    specs = validate_tree(load_tree(WorkTree(iris_repo.path))).specs
    assert specs is not None
    by_history = resolve_model_version(Repository(iris_repo.path), specs, ModelName("iris"), Version.parse("1.1.0"))
    assert by_history.commit == iris_repo.shas[1]
    assert by_history.files()["model.joblib"] == b"weights-1.1"
    # a tag on a later commit that still carries 1.1.0 content (a re-tag after a squash) is honoured
    iris_repo.git("checkout", "-q", "-b", "side", iris_repo.shas[1])
    iris_repo.write("notes.txt", "side\n")
    side = iris_repo.commit("side commit")
    iris_repo.git("tag", "-a", "iris@v1.1.0", side, "-m", "tagged on a side branch")
    iris_repo.git("checkout", "-q", "main")
    assert (
        resolve_model_version(Repository(iris_repo.path), specs, ModelName("iris"), Version.parse("1.1.0")).commit
        == side
    )
    with pytest.raises(Exception, match="version 1.5.0 of model 'iris' does not exist in git history"):
        resolve_model_version(Repository(iris_repo.path), specs, ModelName("iris"), Version.parse("1.5.0"))


def test_history_and_show_work_without_any_tag_and_mark_tagged_versions(iris_repo, invoke):
    before = json.loads(invoke("history", "iris", "--repo", iris_repo.path, "--format", "json").stdout)
    assert [v["tag"] for v in before["versions"]] == [None, None, None]
    invoke("tag", iris_repo.path)
    after = json.loads(invoke("history", "iris", "--repo", iris_repo.path, "--format", "json").stdout)
    assert [v["tag"] for v in after["versions"]] == ["iris@v2.0.0", "iris@v1.1.0", "iris@v1.0.0"]


def test_tag_push_after_a_failed_push_still_delivers_the_tags(iris_repo, invoke):
    good_origin = iris_repo.origin
    iris_repo.git("remote", "set-url", "origin", str(good_origin) + "-missing")
    failed = invoke("tag", iris_repo.path, "--push")
    assert failed.exit_code == 4
    assert "error: git push failed" in failed.stderr
    assert len(iris_repo.tags()) == 4  # created locally before the push failed

    iris_repo.git("remote", "set-url", "origin", str(good_origin))
    again = invoke("tag", iris_repo.path, "--push")
    assert again.exit_code == 0, again.output
    assert again.stdout.splitlines() == ["0 tag(s) created and pushed to origin, 4 already in place"]
    remote = iris_repo.git("ls-remote", "--tags", "origin")
    assert sum("refs/tags/" in line and "^{}" not in line for line in remote.splitlines()) == 4


def test_two_gitops_ml_repositories_in_one_git_repository_do_not_share_tags(git_repo, invoke):
    """`one/` and `two/` both have iris 1.0.0, registered in different commits; `<model>@v<version>`
    tags cannot tell them apart, so a tag is only this repository's when its commit registered
    the version at this repository's path."""
    repo = git_repo(example=False)
    copy_example(repo.path / "one")
    one = repo.commit("add one")
    copy_example(repo.path / "two")
    two = repo.commit("add two")
    created = invoke("tag", repo.path / "one")
    assert created.exit_code == 0, created.output
    assert repo.tags()["iris@v1.0.0"] == one

    models = json.loads(invoke("models", repo.path / "two", "--format", "json").stdout)
    assert {m["name"]: (m["tagged"], m["taggedVersions"]) for m in models["models"]} == {
        "digits": (False, 0),
        "iris": (False, 0),
    }
    assert "iris    1.0.0   no" in invoke("models", repo.path / "two").stdout
    shown = json.loads(invoke("show", "iris@1.0.0", "--repo", repo.path / "two", "--format", "json").stdout)
    assert (shown["commit"]["sha"], shown["tag"]) == (two, None)
    text = invoke("show", "iris@1.0.0", "--repo", repo.path / "two").stdout
    assert (
        f"  tag        none: iris@v1.0.0 is on {one[:12]}, which did not register this version here (see `gitops-ml tag`)"
        in text
    )
    # `one` still sees its own tags
    ours = json.loads(invoke("models", repo.path / "one", "--format", "json").stdout)
    assert {m["name"]: m["tagged"] for m in ours["models"]} == {"digits": True, "iris": True}

    refused = invoke("tag", repo.path / "two")
    assert refused.exit_code == 4
    lines = refused.stderr.splitlines()
    assert lines[0] == (
        f"error: 2 tag(s) already mark another gitops-ml repository's versions in this git repository: digits@v1.0.0 "
        f"and iris@v1.0.0 point at {one[:12]}, where one/ registered them; refusing to move them"
    )
    assert lines[1].startswith(
        "hint: gitops-ml repositories in one git repository share GTO's tag namespace (`<model>@v<version>`)"
    )
    assert set(repo.tags()) == {"digits@v1.0.0", "iris@v1.0.0"}
