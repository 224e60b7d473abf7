"""`gitops-ml history` and `models` on real repositories: versions, authors, dates, environment runs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from support import copy_example

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "repo-layout"
LOVELACE = ("Ada Lovelace", "ada@example.com")
HOPPER = ("Grace Hopper", "grace@example.com")


@pytest.fixture
def iris_repo(git_repo):
    """iris 1.0.0 (day 1) -> 1.1.0 (day 2, by Hopper) -> prod promoted to 1.1.0 (day 3) -> 1.2.0 (day 4)."""
    repo = git_repo()
    repo.set_model("iris", "1.1.0", artifact=b"weights-1.1", metrics={"accuracy": 0.98})
    repo.commit("iris: retrain", author=HOPPER)
    repo.set_pin("prod", "iris", "iris@1.1.0")
    repo.commit("prod: promote iris 1.1.0")
    repo.set_model("iris", "1.2.0", artifact=b"weights-1.2", metrics={"accuracy": 0.99, "f1": 0.97})
    repo.commit("iris: retrain again")
    return repo


def test_history_lists_every_version_newest_first_with_commit_author_metrics_and_runs(iris_repo, invoke):
    result = invoke("history", "iris", "--repo", iris_repo.path)
    assert result.exit_code == 0, result.output
    first, second, _promote, third = iris_repo.shas
    assert result.stdout.splitlines() == [
        "iris: 3 version(s), newest 1.2.0",
        f"iris@1.2.0  2024-01-04  {third[:12]}  Ada Lovelace <ada@example.com>",
        f"  artifact  model.joblib  sha256:{_sha(b'weights-1.2')[:12]}",
        "  metrics   accuracy 0.99 (+0.01), f1 0.97",
        "  ran in    staging 2024-01-04 .. now",
        f"iris@1.1.0  2024-01-02  {second[:12]}  Grace Hopper <grace@example.com>",
        f"  artifact  model.joblib  sha256:{_sha(b'weights-1.1')[:12]}",
        "  metrics   accuracy 0.98 (+0.0022)",
        "  ran in    staging 2024-01-02 .. 2024-01-04",
        "            prod 2024-01-03 .. now",
        f"iris@1.0.0  2024-01-01  {first[:12]}  Ada Lovelace <ada@example.com>",
        "  artifact  model.joblib  sha256:b65497ba5ff3",
        "  metrics   accuracy 0.9778",
        "  ran in    prod 2024-01-01 .. 2024-01-03",
        "            staging 2024-01-01 .. 2024-01-02",
    ]


def test_history_json_carries_commit_dates_runs_and_what_runs_now(iris_repo, invoke):
    result = invoke("history", "iris", "--repo", iris_repo.path, "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["newest"] == "1.2.0"
    assert data["running"] == {"prod": "1.1.0", "staging": "1.2.0"}
    assert [v["version"] for v in data["versions"]] == ["1.2.0", "1.1.0", "1.0.0"]
    v110 = data["versions"][1]
    assert v110["commit"] == {
        "sha": iris_repo.shas[1],
        "date": "2024-01-02T12:00:00+00:00",
        "author": "Grace Hopper",
        "email": "grace@example.com",
        "subject": "iris: retrain",
    }
    assert v110["artifact"] == {"uri": "model.joblib", "sha256": _sha(b"weights-1.1")}
    assert v110["metrics"] == {"accuracy": 0.98}
    assert v110["tag"] is None
    assert [(r["environment"], r["since"], r["until"]) for r in v110["environments"]] == [
        ("staging", "2024-01-02T12:00:00+00:00", "2024-01-04T12:00:00+00:00"),
        ("prod", "2024-01-03T12:00:00+00:00", None),
    ]


def test_history_uses_the_merge_commit_of_a_pull_request(git_repo, invoke):
    repo = git_repo()
    repo.git("checkout", "-q", "-b", "retrain")
    repo.set_model("iris", "1.1.0")
    branch_commit = repo.commit("iris: retrain on a branch")
    repo.git("checkout", "-q", "main")
    repo.write("README.md", "models\n")
    repo.commit("docs")
    repo.git("merge", "-q", "--no-ff", "-m", "Merge pull request #1", "retrain", date=repo.next_date())
    merge = repo.git("rev-parse", "HEAD").strip()

    data = json.loads(invoke("history", "iris", "--repo", repo.path, "--format", "json").stdout)
    v110 = data["versions"][0]
    assert v110["version"] == "1.1.0"
    assert v110["commit"]["sha"] == merge != branch_commit
    assert v110["commit"]["subject"] == "Merge pull request #1"


def test_history_of_an_unknown_model_suggests_the_closest_name(iris_repo, invoke):
    result = invoke("history", "irsi", "--repo", iris_repo.path)
    assert result.exit_code == 4
    assert result.stdout == ""
    assert result.stderr.splitlines() == ["error: unknown model 'irsi'", "hint: did you mean 'iris'?"]


def test_history_outside_a_git_repository_says_so(tmp_path, invoke):
    result = invoke("history", "iris", "--repo", tmp_path)
    assert result.exit_code == 4
    assert "is not inside a git repository" in result.stderr
    assert "Traceback" not in result.output


def test_history_at_an_unknown_revision_is_a_registry_error(iris_repo, invoke):
    result = invoke("history", "iris", "--repo", iris_repo.path, "--rev", "no-such-branch")
    assert result.exit_code == 4
    assert "error: unknown git revision 'no-such-branch'" in result.stderr


def test_history_at_an_older_revision_ignores_later_commits(iris_repo, invoke):
    data = json.loads(invoke("history", "iris", "--repo", iris_repo.path, "--rev", "HEAD~2", "--format", "json").stdout)
    assert [v["version"] for v in data["versions"]] == ["1.1.0", "1.0.0"]
    assert data["running"] == {"prod": "1.0.0", "staging": "1.1.0"}


def test_models_lists_newest_version_and_what_each_environment_runs(iris_repo, invoke):
    result = invoke("models", iris_repo.path)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "MODEL   NEWEST  TAGGED  prod   staging",
        "digits  1.0.0   no      1.0.0  1.0.0*",
        "iris    1.2.0   no      1.1.0  1.2.0*",
        "* tracks the newest version",
        f"2 model(s) at {iris_repo.shas[-1][:12]}",
    ]


def test_models_json_after_tagging(iris_repo, invoke):
    assert invoke("tag", iris_repo.path).exit_code == 0
    data = json.loads(invoke("models", iris_repo.path, "--format", "json").stdout)
    assert data["environments"] == ["prod", "staging"]
    iris = next(m for m in data["models"] if m["name"] == "iris")
    assert iris == {
        "name": "iris",
        "newest": "1.2.0",
        "tagged": True,
        "taggedVersions": 3,
        "environments": {
            "prod": {"pin": "iris@1.1.0", "version": "1.1.0", "tracking": False},
            "staging": {"pin": "iris", "version": "1.2.0", "tracking": True},
        },
    }


def test_models_reads_git_not_the_working_tree(iris_repo, invoke):
    iris_repo.set_model("iris", "9.0.0")  # uncommitted
    data = json.loads(invoke("models", iris_repo.path, "--format", "json").stdout)
    assert next(m for m in data["models"] if m["name"] == "iris")["newest"] == "1.2.0"


def test_registry_in_a_subdirectory_of_the_git_work_tree(git_repo, invoke):
    repo = git_repo(example=False)
    copy_example(repo.path / "ml")
    repo.commit("ml/ holds the models")
    repo.replace("ml/models/iris/model.yaml", "version: 1.0.0", "version: 1.0.1")
    repo.commit("iris: patch")
    data = json.loads(invoke("history", "iris", "--repo", repo.path / "ml", "--format", "json").stdout)
    assert [v["version"] for v in data["versions"]] == ["1.0.1", "1.0.0"]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_shallow_clone_warns_in_history_and_refuses_to_tag(iris_repo, invoke, tmp_path):
    iris_repo.push()
    clone = tmp_path / "shallow"
    iris_repo.git("clone", "-q", "--depth", "1", f"file://{iris_repo.origin}", str(clone))
    result = invoke("history", "iris", "--repo", clone, "--format", "json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["complete"] is False
    assert [v["version"] for v in data["versions"]] == ["1.2.0"]
    assert "warning: shallow clone" in result.stderr
    assert "fetch-depth: 0" in result.stderr

    tag = invoke("tag", clone)
    assert tag.exit_code == 4
    assert (
        tag.stderr.splitlines()[0]
        == "error: refusing to tag in a shallow clone: the commits that registered versions may be missing"
    )
    assert "fetch-depth: 0" in tag.stderr
    assert iris_repo.git("-C", str(clone), "tag").strip() == ""
