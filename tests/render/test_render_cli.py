"""`gitops-ml render` on real repositories: pins from git history, ownership of the render root,
--check, and every bad input of issue 3 as a located error with the right exit code."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Callable

import yaml
from render.render_helpers import Repo, run

LOCATED = re.compile(r"^error: [\w./-]+:\d+:\d+: ", re.M)


def image_tag(repo: Repo, env: str, model: str) -> str:
    doc = yaml.safe_load(repo.read(f"deploy/apps/{env}/{model}/kustomization.yaml"))
    return str(doc["images"][0]["newTag"])


def test_pin_renders_the_files_of_its_commit(example_repo: Callable[[], Repo]) -> None:
    repo = example_repo()
    repo.commit("iris 1.0.0")
    assert run("render", repo.path).exit_code == 0
    tag_at_100 = image_tag(repo, "prod", "iris")
    assert image_tag(repo, "staging", "iris") == tag_at_100
    # retrain: a new version in the working tree; prod stays pinned to iris@1.0.0
    repo.edit("models/iris/model.yaml", "version: 1.0.0", "version: 1.1.0")
    (repo.path / "models/iris/score.py").write_text(repo.read("models/iris/score.py") + "\n# retrained\n")
    repo.commit("iris 1.1.0")
    result = run("render", repo.path)
    assert result.exit_code == 0, result.stderr
    assert image_tag(repo, "prod", "iris") == tag_at_100
    assert image_tag(repo, "staging", "iris").startswith("1.1.0-")
    assert image_tag(repo, "staging", "iris") != tag_at_100
    prod = repo.read("deploy/apps/prod/iris/kustomization.yaml")
    assert "GITOPS_ML_MODEL_VERSION=1.0.0" in prod
    # the endpoint's names do not depend on the version: Service and host are unchanged
    assert "name: iris\n" in repo.read("deploy/apps/base/iris/service.yaml")
    assert "iris.ml.example.com" in repo.read("deploy/apps/prod/iris/httproute.yaml")


def test_pin_to_a_version_not_in_history(example_repo: Callable[[], Repo]) -> None:
    repo = example_repo()
    repo.edit("deployments/prod/iris.yaml", "model: iris@1.0.0", "model: iris@0.9.0")
    repo.commit("pin to a version that never existed")
    result = run("render", repo.path)
    assert result.exit_code == 4
    assert (
        "error: deployments/prod/iris.yaml:5:8: version 0.9.0 of model 'iris' does not exist in git history"
        in result.stderr
    )
    assert "Traceback" not in result.stderr
    assert not (repo.path / "deploy").exists()


def test_pin_in_a_shallow_clone_says_fetch_depth_0(example_repo: Callable[[], Repo], tmp_path: Path) -> None:
    repo = example_repo()
    repo.commit("iris 1.0.0")
    repo.edit("models/iris/model.yaml", "version: 1.0.0", "version: 1.1.0")
    repo.commit("iris 1.1.0")
    clone = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{repo.path}", str(clone)], check=True)
    result = run("render", clone)
    assert result.exit_code == 4
    assert LOCATED.search(result.stderr), result.stderr
    assert "deployments/prod/iris.yaml:5:8" in result.stderr
    assert "fetch-depth: 0" in result.stderr


def test_host_in_two_environments_of_one_cluster(example_repo: Callable[[], Repo]) -> None:
    repo = example_repo()
    repo.edit("deployments/staging/iris.yaml", "host: iris.staging.ml.example.com", "host: iris.ml.example.com")
    result = run("render", repo.path)
    assert result.exit_code == 1
    assert (
        "error: deployments/staging/iris.yaml:20:9: host 'iris.ml.example.com' is already declared by environment 'prod'"
        in result.stderr
    )
    # on another cluster the same host is fine
    repo.edit(
        "gitops-ml.yaml",
        "  staging:\n    namespace: ml-staging",
        "  staging:\n    namespace: ml-staging\n    cluster: https://staging.example.com",
    )
    assert run("render", repo.path).exit_code == 0


def test_unknown_engine(example_repo: Callable[[], Repo]) -> None:
    repo = example_repo()
    repo.edit("gitops-ml.yaml", "engine: argocd", "engine: spinnaker")
    result = run("render", repo.path)
    assert result.exit_code == 1
    assert "error: gitops-ml.yaml:12:9: engine: 'spinnaker' is not one of 'argocd', 'flux'" in result.stderr
    assert "Traceback" not in result.stderr


def test_foreign_files_are_left_untouched_and_reported(example_repo: Callable[[], Repo]) -> None:
    repo = example_repo()
    assert run("render", repo.path).exit_code == 0
    mine = repo.path / "deploy/apps/prod/iris/extra-configmap.yaml"
    mine.write_text("hand: written\n")
    repo.edit("deployments/prod/iris.yaml", "maxReplicas: 120", "maxReplicas: 100")
    result = run("render", repo.path)
    assert result.exit_code == 1
    assert "deploy/apps/prod/iris/extra-configmap.yaml" in result.stderr
    assert "did not write" in result.stderr
    assert mine.read_text() == "hand: written\n"
    assert "maxReplicas: 120" in repo.read("deploy/apps/prod/iris/hpa.yaml")  # nothing was changed
    mine.unlink()
    assert run("render", repo.path).exit_code == 0
    assert "maxReplicas: 100" in repo.read("deploy/apps/prod/iris/hpa.yaml")


def test_check_names_a_hand_edited_file_and_render_repairs_it(example_repo: Callable[[], Repo]) -> None:
    repo = example_repo()
    assert run("render", repo.path).exit_code == 0
    assert run("render", repo.path, "--check").exit_code == 0
    target = repo.path / "deploy/apps/prod/iris/hpa.yaml"
    target.write_text(target.read_text().replace("maxReplicas: 120", "maxReplicas: 5"))
    result = run("render", repo.path, "--check")
    assert result.exit_code == 1
    assert "error: deploy/apps/prod/iris/hpa.yaml: differs from what `gitops-ml render` writes" in result.stderr
    assert "maxReplicas: 5" in target.read_text()  # --check writes nothing
    assert run("render", repo.path).exit_code == 0
    assert "maxReplicas: 120" in target.read_text()


def test_check_lists_missing_and_extra_files(example_repo: Callable[[], Repo]) -> None:
    repo = example_repo()
    assert run("render", repo.path).exit_code == 0
    (repo.path / "deploy/apps/staging/iris/pdb.yaml").unlink()
    (repo.path / "deployments/staging/digits.yaml").unlink()
    result = run("render", repo.path, "--check")
    assert result.exit_code == 1
    assert "deploy/apps/staging/iris/pdb.yaml: is missing" in result.stderr
    assert "deploy/apps/staging/digits/kustomization.yaml: is no longer rendered" in result.stderr
    assert "deploy/clusters/staging/applications/digits.yaml: is no longer rendered" in result.stderr


def test_stale_files_are_removed_and_only_those(example_repo: Callable[[], Repo]) -> None:
    repo = example_repo()
    assert run("render", repo.path).exit_code == 0
    (repo.path / "deployments/staging/digits.yaml").unlink()
    result = run("render", repo.path)
    assert result.exit_code == 0, result.stderr
    assert not (repo.path / "deploy/apps/staging/digits").exists()
    assert (repo.path / "deploy/apps/prod/digits/kustomization.yaml").is_file()
    assert (repo.path / "deploy/apps/base/digits/deployment.yaml").is_file()  # prod still needs the base
    assert "digits" not in repo.read("deploy/clusters/staging/kustomization.yaml")


def test_content_addressed_tag_follows_the_files(example_repo: Callable[[], Repo]) -> None:
    a, b = example_repo(), example_repo()
    assert run("render", a.path).exit_code == 0
    assert run("render", b.path).exit_code == 0
    assert image_tag(a, "staging", "digits") == image_tag(b, "staging", "digits")
    (b.path / "models/digits/score.py").write_text(b.read("models/digits/score.py") + "\n")
    assert run("render", b.path).exit_code == 0
    assert image_tag(a, "staging", "digits") != image_tag(b, "staging", "digits")
    assert image_tag(a, "staging", "iris") == image_tag(b, "staging", "iris")


def test_env_option_renders_one_environment(example_repo: Callable[[], Repo]) -> None:
    repo = example_repo()
    assert run("render", repo.path).exit_code == 0
    repo.edit("deployments/prod/iris.yaml", "maxReplicas: 120", "maxReplicas: 100")
    repo.edit("deployments/staging/iris.yaml", "maxReplicas: 3", "maxReplicas: 4")
    assert run("render", repo.path, "--env", "staging").exit_code == 0
    assert "maxReplicas: 4" in repo.read("deploy/apps/staging/iris/hpa.yaml")
    assert "maxReplicas: 120" in repo.read("deploy/apps/prod/iris/hpa.yaml")
    assert (repo.path / "deploy/clusters/prod/kustomization.yaml").is_file()
    result = run("render", repo.path, "--env", "qa")
    assert result.exit_code == 1 and "unknown environment 'qa'" in result.stderr


def test_invalid_repository_is_reported_with_locations(example_repo: Callable[[], Repo]) -> None:
    repo = example_repo()
    repo.edit("deployments/prod/digits.yaml", "maxReplicas: 20", "maxReplicas: many")
    result = run("render", repo.path)
    assert result.exit_code == 1
    assert LOCATED.search(result.stderr) and "deployments/prod/digits.yaml:7:" in result.stderr


def test_application_set_generates_the_applications_it_replaces(example_repo: Callable[[], Repo]) -> None:
    """What Argo CD's git directory generator makes of the ApplicationSet, for each overlay directory,
    is the Application that render writes without it; the per-model files go away."""
    repo = example_repo()
    assert run("render", repo.path).exit_code == 0
    applications = {
        m: yaml.safe_load(repo.read(f"deploy/clusters/staging/applications/{m}.yaml")) for m in ("iris", "digits")
    }
    repo.edit("gitops-ml.yaml", "    namespace: ml-staging\n", "    namespace: ml-staging\n    applicationSet: true\n")
    result = run("render", repo.path)
    assert result.exit_code == 0, result.stderr
    assert not (repo.path / "deploy/clusters/staging/applications").exists()
    assert (repo.path / "deploy/clusters/prod/applications/iris.yaml").is_file(), "other environments keep Applications"
    appset = yaml.safe_load(repo.read("deploy/clusters/staging/applicationset.yaml"))
    assert yaml.safe_load(repo.read("deploy/clusters/staging/kustomization.yaml"))["resources"] == [
        "appproject.yaml",
        "applicationset.yaml",
    ]
    (generator,) = appset["spec"]["generators"]
    (pattern,) = generator["git"]["directories"]
    overlays = sorted(p for p in (repo.path).glob(pattern["path"]) if p.is_dir())
    assert [p.name for p in overlays] == ["digits", "iris"]
    for overlay in overlays:
        path = str(overlay.relative_to(repo.path))
        text = (
            yaml.safe_dump(appset["spec"]["template"])
            .replace("{{ .path.basename }}", overlay.name)
            .replace("{{ .path.path }}", path)
        )
        generated = {"apiVersion": appset["apiVersion"], "kind": "Application", **yaml.safe_load(text)}
        generated["metadata"]["namespace"] = appset["metadata"]["namespace"]
        assert generated == applications[overlay.name]


def test_a_filesystem_root_is_refused_as_render_root(example_repo: Callable[[], Repo]) -> None:
    repo = example_repo()
    for args in ((), ("--check",)):
        result = run("render", repo.path, "--out", "/", *args)
        assert result.exit_code == 1
        assert "error: the render root / is a filesystem root" in result.stderr
        assert "//" not in result.stderr and "Traceback" not in result.stderr


def test_the_repository_itself_is_refused_as_render_root(example_repo: Callable[[], Repo]) -> None:
    repo = example_repo()
    for out in (repo.path, repo.path.parent):
        result = run("render", repo.path, "--out", out)
        assert result.exit_code == 1
        assert f"error: the render root {out} holds the repository {repo.path}" in result.stderr
    repo.edit("gitops-ml.yaml", "renderRoot: deploy", "renderRoot: .")
    result = run("render", repo.path, "--check")
    assert result.exit_code == 1
    assert f"error: gitops-ml.yaml:13:13: the render root {repo.path} holds the repository {repo.path}" in result.stderr
    assert not (repo.path / ".gitops-ml-render.json").exists()


def test_a_directory_of_other_files_is_refused_without_listing_them_all(
    example_repo: Callable[[], Repo], tmp_path: Path
) -> None:
    repo = example_repo()
    out = tmp_path / "elsewhere"
    for i in range(300):
        (out / f"d{i // 100}").mkdir(parents=True, exist_ok=True)
        (out / f"d{i // 100}" / f"f{i:03d}.txt").write_text("mine\n")
    for args in ((), ("--check",)):
        result = run("render", repo.path, "--out", out, *args)
        assert result.exit_code == 1
        assert result.stderr.startswith(
            f"error: {out}/ holds more than 100 files gitops-ml did not write ({out}/d0/f000.txt, {out}/d0/f001.txt, "
        ), result.stderr
        assert result.stderr.count(f"{out}/d") == 5
    assert sorted(p.name for p in out.iterdir()) == ["d0", "d1", "d2"] and len(list(out.rglob("*.txt"))) == 300


def test_a_directory_where_a_rendered_file_goes_is_a_located_error(example_repo: Callable[[], Repo]) -> None:
    repo = example_repo()
    assert run("render", repo.path).exit_code == 0
    target = repo.path / "deploy/apps/prod/iris/pdb.yaml"
    target.unlink()
    target.mkdir()
    result = run("render", repo.path)
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "error: deploy/apps/prod/iris/pdb.yaml: cannot be written: a directory is in the way;"
    ), result.stderr
    target.rmdir()
    assert run("render", repo.path).exit_code == 0 and target.is_file()
