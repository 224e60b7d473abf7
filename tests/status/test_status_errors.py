"""The errors a user of `gitops-ml status` meets: each one clear, located where it can be, with its exit code."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
from support import require

from gitops_ml.adapters.cluster import ClusterSettings
from gitops_ml.repo.handle import Repository
from gitops_ml.status.service import StatusRequest, read_status
from tests.status import live
from tests.status.conftest import write_kubeconfig
from tests.status.kube_server import TOKEN, KubeServer, Running, forbidden, status_object
from tests.status.scenarios import deploy, lines_of, status

pytestmark = pytest.mark.kustomize


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_no_kubeconfig_and_not_in_a_pod(
    example: live.Rendered, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "nowhere"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    result = status(str(example.repo.path))
    assert result.exit_code == 3
    assert result.stderr == (
        f"error: no Kubernetes configuration: $KUBECONFIG ({tmp_path / 'nowhere'}) does not exist and this is not a pod in a cluster\n"
        "hint: point KUBECONFIG (or --kubeconfig) at the kubeconfig of the cluster, as for kubectl\n"
    )


def test_default_kubeconfig_is_home_kube_config(example: live.Rendered, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    result = status(str(example.repo.path))
    assert result.exit_code == 3
    assert f"{Path.home() / '.kube' / 'config'} does not exist" in result.stderr


def test_an_unknown_context_lists_the_known_ones(example: live.Rendered, kube: KubeServer, kubeconfig: Path) -> None:
    result = status(str(example.repo.path), "--context", "prod-east")
    assert result.exit_code == 3
    assert (
        result.stderr
        == f"error: context 'prod-east' is not in the kubeconfig $KUBECONFIG ({kubeconfig})\nhint: contexts there: kind-test\n"
    )
    assert kube.seen == []


def test_context_chooses_the_cluster(
    example: live.Rendered, kube: KubeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deploy(kube, example)
    # the current context points at nothing; --context picks the one that answers
    path = write_kubeconfig(
        tmp_path / "config", f"http://127.0.0.1:{_closed_port()}", extra_contexts={"kind-other": kube.url}
    )
    monkeypatch.delenv("KUBECONFIG", raising=False)
    result = status(str(example.repo.path), "--kubeconfig", str(path), "--context", "kind-other")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"cluster {kube.url} (context 'kind-other' (user 'ci'))")


def test_an_unreachable_api_server(example: live.Rendered, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = _closed_port()
    monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "config", f"http://127.0.0.1:{port}")))
    result = status(str(example.repo.path))
    assert result.exit_code == 5
    first, hint = result.stderr.splitlines()
    assert first.startswith(
        f"error: cannot reach the Kubernetes API server at http://127.0.0.1:{port} (context 'kind-test' (user 'ci')): "
    )
    assert "Connection refused" in first
    assert (
        hint
        == "hint: check that the cluster is up and reachable from here (VPN, proxy) and that --context names it (`kubectl config get-contexts` lists them)"
    )


def test_401_rejected_credentials(
    example: live.Rendered, kube: KubeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "config", kube.url, token="expired-token")))
    result = status(str(example.repo.path))
    assert result.exit_code == 5
    assert result.stderr == (
        f"error: the API server at {kube.url} rejected the credentials of context 'kind-test' (user 'ci') (401 Unauthorized)\n"
        "hint: log in again or renew the token (with the same kubeconfig `kubectl get --raw /version` fails the same way)\n"
    )
    assert kube.unauthorized == 1 and kube.seen[0].authorization == "Bearer expired-token"


def test_403_names_the_verb_and_the_resource(example: live.Rendered, kube: KubeServer, kubeconfig: Path) -> None:
    deploy(kube, example)
    kube.fail(
        lambda s: s.path == "/apis/apps/v1/namespaces/ml-prod/replicasets",
        403,
        forbidden("list", "replicasets", "apps", "ml-prod"),
    )
    result = status(str(example.repo.path))
    assert result.exit_code == 5
    assert result.stderr == (
        "error: context 'kind-test' (user 'ci') may not list replicasets.apps in namespace 'ml-prod' (403 Forbidden): "
        'replicasets.apps is forbidden: User "system:serviceaccount:ci:gitops-ml" cannot list resource "replicasets" '
        'in API group "apps" in the namespace "ml-prod"\n'
        "hint: `gitops-ml status` needs get, list and watch on what it reads; `gitops-ml status --print-rbac` prints a "
        "read-only ClusterRole and its RoleBindings for a cluster admin to apply\n"
    )


def test_every_namespace_missing_is_the_wrong_cluster(
    example: live.Rendered, kube: KubeServer, kubeconfig: Path
) -> None:
    kube.serve_crds("Application")
    result = status(str(example.repo.path))
    assert result.exit_code == 5
    assert result.stderr == (
        f"error: namespace ml-prod, ml-staging (environment prod, staging) does not exist on the cluster at {kube.url} "
        "(context 'kind-test' (user 'ci'))\n"
        "hint: is this the cluster those environments deploy to? Choose it with --context, or ask only for this cluster's "
        "environments with --env\n"
    )
    assert {s.path for s in kube.seen if "/namespaces/" in s.path and s.path.count("/") == 4} == {
        "/api/v1/namespaces/ml-prod",
        "/api/v1/namespaces/ml-staging",
    }


def test_one_namespace_missing_marks_its_endpoints(example: live.Rendered, kube: KubeServer, kubeconfig: Path) -> None:
    deploy(kube, example, skip=(("staging", "iris"), ("staging", "digits")))
    kube.namespaces.discard("ml-staging")
    result = status(str(example.repo.path))
    assert result.exit_code == 1
    assert lines_of(result.stdout)["staging/iris"] == "- staging/iris 1.0.0 - - - - missing"
    assert "    not in the cluster: namespace ml-staging does not exist" in result.stdout


def test_a_namespace_status_may_not_check_is_reported_as_missing_objects(
    example: live.Rendered, kube: KubeServer, kubeconfig: Path
) -> None:
    deploy(kube, example, skip=(("staging", "iris"), ("staging", "digits")))
    kube.fail(
        lambda s: s.path == "/api/v1/namespaces/ml-staging", 403, forbidden("get", "namespaces", "", "ml-staging")
    )
    result = status(str(example.repo.path))
    assert result.exit_code == 1
    assert "    not in the cluster: no Deployment or Rollout ml-staging/iris" in result.stdout


def test_engine_crds_missing(example: live.Rendered, kube: KubeServer, kubeconfig: Path) -> None:
    result = status(str(example.repo.path))
    assert result.exit_code == 5
    assert result.stderr == (
        f"error: Argo CD is not installed on the cluster at {kube.url}: it does not serve applications.argoproj.io/v1alpha1, "
        "which environment(s) prod, staging deploy with\n"
        "hint: install Argo CD there, or point --context at the cluster it runs on (with Argo CD managing remote clusters, "
        "that is Argo CD's own cluster)\n"
    )


def test_a_server_error_carries_the_status_message(example: live.Rendered, kube: KubeServer, kubeconfig: Path) -> None:
    deploy(kube, example)
    kube.fail(
        lambda s: s.path.endswith("/ml-staging/deployments"),
        500,
        status_object(500, "InternalError", "etcdserver: request timed out"),
    )
    result = status(str(example.repo.path))
    assert result.exit_code == 5
    assert result.stderr == (
        f"error: the API server at {kube.url} answered 500 Internal Server Error to list deployments.apps in namespace "
        "'ml-staging': etcdserver: request timed out\n"
    )


def test_the_kubernetes_client_not_installed(
    example: live.Rendered, kubeconfig: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "kubernetes", None)  # what `import kubernetes` meets without the extra
    result = status(str(example.repo.path))
    assert result.exit_code == 3
    assert result.stderr == (
        "error: `gitops-ml status` needs the Kubernetes client, which is not installed\n"
        "hint: install the Kubernetes client: pip install 'gitops-ml[kubernetes]'\n"
    )


def test_an_unknown_model(example: live.Rendered, kube: KubeServer, kubeconfig: Path) -> None:
    deploy(kube, example)
    result = status(str(example.repo.path), "--model", "irsi")
    assert result.exit_code == 2
    assert (
        result.stderr
        == "error: no endpoint of model irsi in git or in the cluster\nhint: list the models with `gitops-ml models`\n"
    )


def test_in_cluster_config_over_tls(example: live.Rendered, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In a pod: no kubeconfig, the service account's token and CA, https://$KUBERNETES_SERVICE_HOST."""
    require(bool(shutil.which("openssl")), "openssl is not installed")
    account = tmp_path / "serviceaccount"
    account.mkdir()
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=kubernetes",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(tmp_path / "key.pem"),
            "-out",
            str(account / "ca.crt"),
        ],
        check=True,
        capture_output=True,
    )
    (account / "token").write_text(TOKEN)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(account / "ca.crt", tmp_path / "key.pem")
    state = KubeServer()
    running = Running(state, tls=context)
    try:
        deploy(state, example)
        monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))
        monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        monkeypatch.setenv("KUBERNETES_SERVICE_PORT", state.url.rsplit(":", 1)[1])
        report = read_status(
            StatusRequest(
                Repository(example.repo.path), cluster=ClusterSettings(service_account_dir=account), timeout=30
            )
        )
    finally:
        running.close()
    state.assert_clean()
    assert report.settled and report.server == state.url and report.identity == "this pod's service account"
    assert {s.authorization for s in state.seen} == {f"bearer {TOKEN}"}


def test_kubeconfig_option_that_does_not_exist(example: live.Rendered, tmp_path: Path) -> None:
    result = status(str(example.repo.path), "--kubeconfig", str(tmp_path / "k"))
    assert result.exit_code == 3
    assert result.stderr == f"error: kubeconfig {tmp_path / 'k'} does not exist\n"


def test_repository_given_twice_or_not_at_all(
    example: live.Rendered, kube: KubeServer, kubeconfig: Path, tmp_path: Path
) -> None:
    deploy(kube, example)
    assert (
        status("-C", str(example.repo.path / "models" / "iris")).exit_code == 0
    )  # found from a subdirectory, as git does
    missing = status(str(tmp_path / "nope"))
    assert missing.exit_code == 2 and f"directory {tmp_path / 'nope'} does not exist" in missing.stderr
    other = tmp_path / "other"
    other.mkdir()
    both = status(str(other), "-C", str(example.repo.path))
    assert both.exit_code == 2
    assert f"the repository is given twice ({other} and -C {example.repo.path}); give it once" in both.stderr
