"""`gitops-ml diff --base REF` on real git repositories: text and Markdown, per environment and model."""

from __future__ import annotations

from typing import Callable

from render.render_helpers import Repo, run

from gitops_ml.render.diff import format_markdown, render_diff
from gitops_ml.repo.handle import Repository


def test_retrain_shows_image_and_replica_changes(example_repo: Callable[[], Repo]) -> None:
    repo = example_repo()
    repo.commit("initial")
    repo.edit("models/iris/model.yaml", "version: 1.0.0", "version: 1.1.0")
    repo.edit("deployments/prod/digits.yaml", "maxReplicas: 20", "maxReplicas: 30")
    result = render_diff(Repository(repo.path), "HEAD")
    titles = {c.title: c for c in result.changes}
    assert set(titles) == {"staging/iris", "prod/digits"}  # prod/iris is pinned to 1.0.0: unchanged
    iris = titles["staging/iris"]
    assert iris.image_before.endswith(":" + iris.image_before.rsplit(":", 1)[1]) and ":1.0.0-" in iris.image_before
    assert ":1.1.0-" in iris.image_after
    assert titles["prod/digits"].replicas_after == "2-30 (autoscaled)"
    md = format_markdown(result)
    assert "| prod | digits | changed |" in md
    assert "`2-20 (autoscaled)` → `2-30 (autoscaled)`" in md
    assert md.count("<details>") == 2 and md.count("</details>") == 2
    assert "+  maxReplicas: 30" in md


def test_cli_text_and_exit_code(example_repo: Callable[[], Repo]) -> None:
    repo = example_repo()
    repo.commit("initial")
    same = run("diff", repo.path, "--base", "HEAD", "--exit-code")
    assert same.exit_code == 0 and "no changes" in same.stdout
    (repo.path / "deployments/staging/digits.yaml").unlink()
    result = run("diff", repo.path, "--base", "HEAD", "--exit-code")
    assert result.exit_code == 1
    assert "=== staging/digits: removed" in result.stdout
    assert "-++ /dev/null" not in result.stdout and "+++ /dev/null" in result.stdout


def test_unknown_base_is_a_registry_error(example_repo: Callable[[], Repo]) -> None:
    repo = example_repo()
    repo.commit("initial")
    result = run("diff", repo.path, "--base", "no-such-branch")
    assert result.exit_code == 4
    assert "unknown git revision 'no-such-branch'" in result.stderr


def test_a_broken_file_at_the_base_is_located_at_the_revision(example_repo: Callable[[], Repo]) -> None:
    repo = example_repo()
    repo.commit("initial")
    good = repo.read("deployments/staging/iris.yaml")
    (repo.path / "deployments/staging/iris.yaml").write_text(good + "broken: [\n")
    repo.commit("a YAML syntax error")
    (repo.path / "deployments/staging/iris.yaml").write_text(good)
    repo.commit("fixed")
    line = good.count("\n") + 2  # the flow sequence is left open at the end of the file
    for fmt in ("text", "markdown"):
        result = run("diff", repo.path, "--base", "HEAD~1", "--format", fmt)
        assert result.exit_code == 1
        assert f"error: HEAD~1:deployments/staging/iris.yaml:{line}:1: YAML syntax error" in result.stderr
        assert "error: deployments/" not in result.stderr  # the working tree is fine
    assert run("validate", repo.path).exit_code == 0


def test_a_base_without_the_repository_file_names_the_revision(example_repo: Callable[[], Repo]) -> None:
    repo = example_repo()
    repo.commit("initial")
    settings = repo.read("gitops-ml.yaml")
    (repo.path / "gitops-ml.yaml").unlink()
    repo.commit("no gitops-ml.yaml")
    (repo.path / "gitops-ml.yaml").write_text(settings)
    repo.commit("gitops-ml.yaml again")
    result = run("diff", repo.path, "--base", "HEAD~1")
    assert result.exit_code == 1
    assert "error: HEAD~1:gitops-ml.yaml: repository file is missing" in result.stderr
    assert "error: gitops-ml.yaml:" not in result.stderr


def test_an_unrenderable_working_tree_is_located_in_the_working_tree(example_repo: Callable[[], Repo]) -> None:
    repo = example_repo()
    repo.commit("initial")
    repo.edit("deployments/prod/digits.yaml", "maxReplicas: 20", "maxReplicas: many")
    result = run("diff", repo.path, "--base", "HEAD")
    assert result.exit_code == 1
    assert "error: deployments/prod/digits.yaml:7:" in result.stderr and "HEAD:" not in result.stderr
