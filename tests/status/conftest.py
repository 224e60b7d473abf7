"""Fixtures of the status tests: the local Kubernetes API server, a kubeconfig pointing at it, and
the example repository rendered and built by real Kustomize (once per session)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterator

import pytest
import yaml
from support import ROOT, one_version_example, require

from tests.status import live
from tests.status.kube_server import TOKEN, KubeServer, Running

FLUX_INPUT = ROOT / "tests" / "golden" / "flux" / "input"


def write_kubeconfig(
    path: Path,
    server: str,
    token: str = TOKEN,
    context: str = "kind-test",
    extra_contexts: dict[str, str] | None = None,
) -> Path:
    """A kubeconfig like `kind` writes, with a bearer token user; extra contexts map name -> server."""
    clusters = [{"name": context, "cluster": {"server": server}}]
    contexts = [{"name": context, "context": {"cluster": context, "user": "ci"}}]
    for name, url in (extra_contexts or {}).items():
        clusters.append({"name": name, "cluster": {"server": url}})
        contexts.append({"name": name, "context": {"cluster": name, "user": "ci"}})
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": clusters,
        "contexts": contexts,
        "current-context": context,
        "users": [{"name": "ci", "user": {"token": token}}],
    }
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture
def kube() -> Iterator[KubeServer]:
    """The API server, empty; every request it got is checked when the test ends."""
    state = KubeServer()
    running = Running(state)
    try:
        yield state
    finally:
        running.close()
    state.assert_clean()


@pytest.fixture
def kubeconfig(kube: KubeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = write_kubeconfig(tmp_path / "kubeconfig", kube.url)
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    return path


def _require_kustomize() -> None:
    require(bool(shutil.which("kustomize") or shutil.which("kubectl")), "kustomize or kubectl is not installed")


@pytest.fixture(scope="session")
def example(tmp_path_factory: pytest.TempPathFactory) -> live.Rendered:
    """examples/repo-layout as a git repository, rendered, committed and built (iris and digits at 1.0.0)."""
    _require_kustomize()
    repo = live.copy_repo(one_version_example(), tmp_path_factory.mktemp("example") / "repo")
    repo.commit("models at 1.0.0")
    return live.render_and_build(repo, "render")


@pytest.fixture(scope="session")
def example_v2(example: live.Rendered, tmp_path_factory: pytest.TempPathFactory) -> live.Rendered:
    """The example after a retrain: iris 1.1.0 in the working tree (staging tracks it; prod stays pinned at 1.0.0)."""
    target = tmp_path_factory.mktemp("example-v2") / "repo"
    shutil.copytree(example.repo.path, target)
    repo = live.Repo(target, example.repo.commits)
    repo.edit("models/iris/model.yaml", "version: 1.0.0", "version: 1.1.0")
    repo.commit("iris 1.1.0")
    return live.render_and_build(repo, "render iris 1.1.0")


@pytest.fixture(scope="session")
def flux_example(tmp_path_factory: pytest.TempPathFactory) -> live.Rendered:
    """The Flux golden case's input as a git repository, rendered, committed and built."""
    _require_kustomize()
    repo = live.copy_repo(FLUX_INPUT, tmp_path_factory.mktemp("flux") / "repo")
    repo.commit("flux models")
    return live.render_and_build(repo, "render")
