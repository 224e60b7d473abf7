"""`status --print-rbac`: a read-only role that is valid Kubernetes RBAC and allows every request
status makes (checked against the requests the local API server received), and nothing that writes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gitops_ml.adapters.kubernetes import Schemas
from tests.status import live
from tests.status.kube_server import KubeServer
from tests.status.scenarios import status
from tests.status.test_status_watch import _finish, _half_way

pytestmark = pytest.mark.kustomize


def _allowed(rbac: list[dict], verb: str, group: str, plural: str, namespace: str | None) -> bool:
    roles = {d["metadata"]["name"]: d for d in rbac if d["kind"] == "ClusterRole"}
    for binding in rbac:
        if binding["kind"] == "RoleBinding" and binding["metadata"]["namespace"] != namespace:
            continue
        if binding["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        for rule in roles[binding["roleRef"]["name"]]["rules"]:
            if group in rule["apiGroups"] and plural in rule["resources"] and verb in rule["verbs"]:
                return True
    return False


def test_printed_rbac_is_valid_read_only_and_covers_every_request(
    example: live.Rendered, example_v2: live.Rendered, kube: KubeServer, kubeconfig: Path
) -> None:
    printed = status(str(example_v2.repo.path), "--print-rbac")
    assert printed.exit_code == 0, printed.stderr
    assert printed.stdout.startswith("# Read-only access for `gitops-ml status`")
    rbac = [d for d in yaml.safe_load_all(printed.stdout) if d]
    assert [Schemas(shipped=False).check(d).errors for d in rbac] == [[]] * len(rbac)
    verbs = {v for d in rbac if d["kind"] == "ClusterRole" for rule in d["rules"] for v in rule["verbs"]}
    assert verbs <= {"get", "list", "watch"}
    assert sorted(d["metadata"].get("namespace", "") for d in rbac if d["kind"] == "RoleBinding") == [
        "argocd",
        "ml-prod",
        "ml-staging",
    ]
    assert kube.seen == []  # printing the role needs no cluster

    # every request of a run that reads pods, namespaces and watches is allowed by it
    dep, old_rs, new_rs = _half_way(kube, example, example_v2)
    kube.on_watch[("deployments", "ml-staging")] = lambda: _finish(kube, example_v2, dep, old_rs, new_rs)
    assert status(str(example_v2.repo.path), "--watch", "--timeout", "60").exit_code == 0
    kube.delete("Deployment", "ml-staging", "digits")
    kube.delete("Deployment", "ml-staging", "iris")
    assert status(str(example_v2.repo.path)).exit_code == 1  # asks whether ml-staging exists
    assert "/api/v1/namespaces/ml-staging" in {s.path for s in kube.seen}
    checked = 0
    for seen in kube.seen:
        parts = seen.path.strip("/").split("/")
        if parts[0] == "apis" and len(parts) == 3:
            continue  # discovery: open to every authenticated user
        if parts[0] == "api":  # /api/v1/namespaces/<ns>[/<plural>]
            group, rest = "", parts[2:]
        else:
            group, rest = parts[1], parts[3:]
        if len(rest) == 2:
            verb, plural, namespace = "get", rest[0], None
        else:
            verb, plural, namespace = (
                ("watch" if seen.query.get("watch") in ("true", "True") else "list"),
                rest[2],
                rest[1],
            )
        assert _allowed(rbac, verb, group, plural, namespace), (
            f"{verb} {group}/{plural} in {namespace} is not allowed by --print-rbac"
        )
        checked += 1
    assert checked > 20
