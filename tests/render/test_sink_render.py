"""The capture sink's side of render: credentials come from a Secret the deployment file names (envFrom,
never a value) or from the pod's identity (ServiceAccount annotations); the pod is given time for the
last upload and, behind its NetworkPolicy, a way to the store."""

from __future__ import annotations

from typing import Any, Callable

import pytest
from render.render_helpers import Repo, run
from render.test_verify import _need_kustomize

from gitops_ml.adapters import kustomize
from gitops_ml.serving import settings as srv

PROD = "deployments/prod/iris.yaml"
SINK = "    sink: {uri: s3://ml-captures/prod, endpoint: 'http://minio.storage:9000', credentialsSecret: iris-s3}\n"
ROLE = "arn:aws:iam::123456789012:role/ml-captures-writer"


def _built(repo: Repo) -> dict[tuple[str, str], dict[str, Any]]:
    result = run("render", repo.path, "--verify")
    assert result.exit_code == 0, result.stdout + result.stderr
    built = kustomize.build(kustomize.find_kustomize(), repo.path / "deploy" / "apps" / "prod" / "iris")
    return {(obj["kind"], obj["metadata"]["name"]): obj for obj in built}


@pytest.mark.kustomize
def test_a_sink_with_a_credentials_secret_and_a_cloud_identity(example_repo: Callable[[], Repo]) -> None:
    _need_kustomize()
    before = _built(example_repo())
    repo = example_repo()
    repo.edit(PROD, "    sampling: 0.05\n", "    sampling: 0.05\n" + SINK)
    with (repo.path / PROD).open("a") as f:
        f.write(f"serviceAccount:\n  annotations: {{eks.amazonaws.com/role-arn: '{ROLE}'}}\n")
    objects = _built(repo)

    pod = objects[("Deployment", "iris")]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    settings = next(name for kind, name in objects if kind == "ConfigMap" and name.startswith("iris-settings-"))
    # the settings by their generated (hashed) name, then the Secret by the name the file gives
    assert container["envFrom"] == [{"configMapRef": {"name": settings}}, {"secretRef": {"name": "iris-s3"}}]
    assert not any(kind == "Secret" for kind, _ in objects)
    assert not any(key.startswith("AWS_") for key in objects[("ConfigMap", settings)]["data"])
    assert objects[("ConfigMap", settings)]["data"]["GITOPS_ML_CAPTURE_SINK_URI"] == "s3://ml-captures/prod"

    assert objects[("ServiceAccount", "iris")]["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": ROLE}
    assert pod["serviceAccountName"] == "iris"

    # the last upload on shutdown has its time on top of the drain and flush
    grace_before = before[("Deployment", "iris")]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert pod["terminationGracePeriodSeconds"] == grace_before + int(srv.SINK_FLUSH_SECONDS)

    # DNS and the store's port, nothing else
    egress = objects[("NetworkPolicy", "iris")]["spec"]["egress"]
    assert egress[1:] == [{"ports": [{"port": 9000, "protocol": "TCP"}]}]
    assert len(before[("NetworkPolicy", "iris")]["spec"]["egress"]) == 1


@pytest.mark.kustomize
def test_candidates_get_the_credentials_too(example_repo: Callable[[], Repo]) -> None:
    _need_kustomize()
    repo = example_repo()
    repo.commit("iris 1.0.0")
    repo.edit("models/iris/model.yaml", "version: 1.0.0", "version: 1.1.0")
    repo.commit("iris 1.1.0")
    repo.edit(PROD, "    sampling: 0.05\n", "    sampling: 0.05\n" + SINK)
    repo.edit(PROD, "model: iris@1.0.0\n", "model: iris@1.0.0\nrollout:\n  shadow: {model: iris@1.1.0}\n")
    objects = _built(repo)
    shadow = objects[("Deployment", "iris-shadow")]["spec"]["template"]["spec"]["containers"][0]
    assert shadow["envFrom"][0]["configMapRef"]["name"].startswith("iris-shadow-settings-")
    assert shadow["envFrom"][1:] == [{"secretRef": {"name": "iris-s3"}}]
