"""`gitops-ml status` against the local API server, in the states a user meets after a merge.

The cluster holds the example's own rendered objects (built by Kustomize), turned live with the
status fields controllers write; the command's exit code, lines and requests are what is checked.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.status import live
from tests.status.kube_server import KubeServer
from tests.status.scenarios import deploy, lines_of, status

pytestmark = pytest.mark.kustomize

SELECTOR = "app.kubernetes.io/managed-by=gitops-ml,app.kubernetes.io/part-of=example-models"


def test_all_in_sync_is_one_ok_line_per_endpoint_and_exit_0(
    example: live.Rendered, kube: KubeServer, kubeconfig: Path
) -> None:
    deploy(kube, example)
    result = status(str(example.repo.path))
    assert result.exit_code == 0, result.stdout + result.stderr
    head = example.head[:7]
    assert result.stdout.splitlines()[0] == f"cluster {kube.url} (context 'kind-test' (user 'ci')); git HEAD {head}"
    lines = lines_of(result.stdout)
    assert sorted(lines) == ["prod/digits", "prod/iris", "staging/digits", "staging/iris"]
    assert lines["prod/iris"] == f"prod/iris 1.0.0 1.0.0 3/3 hpa 3->3 [3-120] Synced/Healthy @{head} ok"
    assert lines["staging/digits"].split()[4:6] == ["fixed", "1"]
    assert result.stdout.splitlines()[-1] == "4 endpoint(s): 4 ok (9 API call(s))"
    # list calls per namespace and kind, never per endpoint; no pods read when all is well
    paths = sorted(s.path for s in kube.seen)
    assert paths == sorted(
        [
            "/apis/argoproj.io/v1alpha1",
            "/apis/keda.sh/v1alpha1",
            "/apis/apps/v1/namespaces/ml-prod/deployments",
            "/apis/apps/v1/namespaces/ml-prod/replicasets",
            "/apis/autoscaling/v2/namespaces/ml-prod/horizontalpodautoscalers",
            "/apis/apps/v1/namespaces/ml-staging/deployments",
            "/apis/apps/v1/namespaces/ml-staging/replicasets",
            "/apis/autoscaling/v2/namespaces/ml-staging/horizontalpodautoscalers",
            "/apis/argoproj.io/v1alpha1/namespaces/argocd/applications",
        ]
    )
    assert all(
        s.query.get("labelSelector") == SELECTOR
        for s in kube.seen
        if s.path.endswith(("deployments", "replicasets", "applications"))
    )


def test_json_report_carries_git_and_cluster_side_by_side(
    example: live.Rendered, kube: KubeServer, kubeconfig: Path
) -> None:
    deploy(kube, example)
    result = status(str(example.repo.path), "--format", "json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert (doc["ok"], doc["head"], doc["apiCalls"], doc["counts"]) == (True, example.head, 9, {"ok": 4})
    iris = next(e for e in doc["endpoints"] if (e["environment"], e["model"]) == ("prod", "iris"))
    tag = example.objects("prod", "iris")["Deployment"]["spec"]["template"]["spec"]["containers"][0]["image"].rsplit(
        ":", 1
    )[1]
    assert iris["git"]["stable"] == {"version": "1.0.0", "imageTag": tag, "revision": "iris@v1.0.0", "commit": None}
    assert iris["workload"]["imageTag"] == tag and iris["workload"]["revision"] == "iris@v1.0.0"
    assert iris["running"] == [{"version": "1.0.0", "imageTag": tag, "replicas": 3, "ready": 3, "role": "stable"}]
    assert iris["scaling"] == {"kind": "hpa", "current": 3, "desired": 3, "min": 3, "max": 120}
    assert iris["engine"]["sync"] == "Synced" and iris["engine"]["relationToHead"] == "head"
    assert iris["verdict"] == "ok" and iris["marks"] == []


def test_lists_come_in_pages(example: live.Rendered, kube: KubeServer, kubeconfig: Path) -> None:
    deploy(kube, example)
    kube.page_size_limit = 1
    result = status(str(example.repo.path))
    assert result.exit_code == 0, result.stderr
    pages = [s for s in kube.seen if s.path == "/apis/apps/v1/namespaces/ml-prod/deployments"]
    assert len(pages) == 2 and "continue" not in pages[0].query and pages[1].query["continue"]


def _rolling(kube: KubeServer, old: live.Rendered, new: live.Rendered, *, stuck: bool) -> None:
    """staging/iris half way from 1.0.0 to 1.1.0: the spec is 1.1.0, one new pod, two old ones still serving."""
    deploy(kube, new, skip=(("staging", "iris"),))
    objects = new.objects("staging", "iris")
    old_template = old.objects("staging", "iris")["Deployment"]["spec"]["template"]
    new_rs_name = f"iris-{live.template_hash(objects['Deployment']['spec']['template'])}"
    if stuck:
        progressing = live.condition(
            "Progressing", "False", "ProgressDeadlineExceeded", f'ReplicaSet "{new_rs_name}" has timed out progressing.'
        )
        dep = live.deployment(
            objects["Deployment"], replicas=2, updated=1, ready=2, available=2, total=3, progressing=progressing
        )
    else:
        progressing = live.condition(
            "Progressing", "True", "ReplicaSetUpdated", f'ReplicaSet "{new_rs_name}" is progressing.'
        )
        dep = live.deployment(
            objects["Deployment"], replicas=2, updated=1, ready=3, available=3, total=3, progressing=progressing
        )
    kube.put(dep)
    kube.put(live.replicaset(dep, old_template, revision=1, replicas=2))
    new_rs = kube.put(live.replicaset(dep, dep["spec"]["template"], revision=2, replicas=1, ready=0 if stuck else 1))
    kube.put(live.hpa(objects["HorizontalPodAutoscaler"], current=2))
    if stuck:
        image = dep["spec"]["template"]["spec"]["containers"][0]["image"]
        kube.put(live.pod(new_rs, 0, waiting=("ImagePullBackOff", f'Back-off pulling image "{image}"')))
    kube.put(
        live.application(
            new.engine("staging", "iris"), revision=new.head, health="Progressing" if not stuck else "Degraded"
        )
    )


def test_a_rollout_in_progress_is_progressing_and_exits_1(
    example: live.Rendered, example_v2: live.Rendered, kube: KubeServer, kubeconfig: Path
) -> None:
    _rolling(kube, example, example_v2, stuck=False)
    result = status(str(example_v2.repo.path))
    assert result.exit_code == 1
    line = lines_of(result.stdout)["staging/iris"]
    assert line.startswith("~ staging/iris")
    assert "1.1.0 1.1.0x1 new, 1.0.0x2 old 3/2" in line and line.endswith("progressing")
    assert "    rolling out 1.1.0: 1 of 2 updated, 3 available; still serving 1.0.0 x2" in result.stdout
    assert lines_of(result.stdout)["prod/iris"].split()[-1] == "ok"
    assert result.stderr == "error: 1 endpoint(s) not in sync or not healthy\n"


def test_a_failed_rollout_names_the_deadline_and_why_the_pods_do_not_start(
    example: live.Rendered, example_v2: live.Rendered, kube: KubeServer, kubeconfig: Path
) -> None:
    _rolling(kube, example, example_v2, stuck=True)
    result = status(str(example_v2.repo.path))
    assert result.exit_code == 1
    assert lines_of(result.stdout)["staging/iris"].startswith("x staging/iris")
    assert 'rollout failed (ProgressDeadlineExceeded): ReplicaSet "iris-' in result.stdout
    assert "has timed out progressing." in result.stdout
    assert 'ImagePullBackOff: Back-off pulling image "registry.example.com/ml/iris:1.1.0-' in result.stdout
    assert "Argo CD: Degraded" in result.stdout
    # pods are read only where something is wrong
    assert [s.path for s in kube.seen if s.path.endswith("/pods")] == ["/api/v1/namespaces/ml-staging/pods"]


def test_argo_cd_out_of_sync_and_degraded_and_an_engine_behind_head(
    example: live.Rendered, example_v2: live.Rendered, kube: KubeServer, kubeconfig: Path
) -> None:
    deploy(kube, example_v2, skip=(("staging", "iris"), ("prod", "digits")))
    # staging/iris still runs the old render and crashes; Argo CD compared it with HEAD and cannot sync
    objects = example.objects("staging", "iris")
    dep = live.deployment(objects["Deployment"], replicas=1, ready=0, available=0)
    kube.put(dep)
    rs = kube.put(live.replicaset(dep, dep["spec"]["template"], revision=1, replicas=1, ready=0))
    kube.put(
        live.pod(rs, 0, waiting=("CrashLoopBackOff", "back-off 5m0s restarting failed container=model"), restarts=7)
    )
    kube.put(live.hpa(objects["HorizontalPodAutoscaler"], current=1))
    error = live.condition(
        "SyncError", "True", "", 'Failed to sync: admission webhook "validate.kyverno.svc" denied the request'
    )
    error.pop("status"), error.pop("reason")
    kube.put(
        live.application(
            example_v2.engine("staging", "iris"),
            revision=example_v2.head,
            sync="OutOfSync",
            health="Degraded",
            conditions=[error],
        )
    )
    # prod/digits is fine, but its Application last compared an older commit
    for obj in live.healthy(example_v2.objects("prod", "digits"), 2):
        kube.put(obj)
    kube.put(live.application(example_v2.engine("prod", "digits"), revision=example.head))

    result = status(str(example_v2.repo.path))
    assert result.exit_code == 1
    lines = lines_of(result.stdout)
    assert lines["staging/iris"].startswith("x staging/iris 1.1.0 1.0.0 0/1")
    assert "OutOfSync/Degraded" in lines["staging/iris"]
    assert "    the cluster's Deployment wants 1.0.0, git 1.1.0" in result.stdout
    assert (
        '    Argo CD: OutOfSync (Failed to sync: admission webhook "validate.kyverno.svc" denied the request)'
        in result.stdout
    )
    assert (
        "    iris-" in result.stdout
        and "CrashLoopBackOff (restarted 7 times): back-off 5m0s restarting failed container=model" in result.stdout
    )
    assert lines["prod/digits"].startswith("~ prod/digits")
    assert f"@{example.head[:7]} (behind HEAD)" in lines["prod/digits"]
    assert (
        f"    Application at {example.head[:7]}, HEAD is {example_v2.head[:7]}: the engine has not synced HEAD yet"
        in result.stdout
    )


def test_flux_ready_false_shows_its_message(flux_example: live.Rendered, kube: KubeServer, kubeconfig: Path) -> None:
    deploy(kube, flux_example)
    message = "health check failed after 5m0s: timeout waiting for: [Deployment/ml-prod/iris status: 'InProgress']"
    engine = flux_example.engine("prod", "iris")
    kube.put(
        live.kustomization(
            engine, revision=flux_example.head, ready="False", reason="HealthCheckFailed", message=message
        )
    )
    result = status(str(flux_example.repo.path))
    assert result.exit_code == 1
    lines = lines_of(result.stdout)
    assert (
        lines["prod/iris"].startswith("x prod/iris") and f"Ready=False @{flux_example.head[:7]}" in lines["prod/iris"]
    )
    assert f"    Flux: Ready=False (HealthCheckFailed): {message}" in result.stdout
    # dev is suspended as git declares (autoSync: false); edge is an Argo CD environment of the same repository
    assert lines["dev/iris"] == f"dev/iris 1.0.0 1.0.0 2/2 fixed 2 Ready (suspended) @{flux_example.head[:7]} ok"
    assert lines["edge/iris"].endswith(f"Synced/Healthy @{flux_example.head[:7]} ok")
    namespaces = {s.path.split("/namespaces/")[1].split("/")[0] for s in kube.seen if "/kustomizations" in s.path}
    assert namespaces == {"flux-system", "gitops"}


def test_an_autoscaler_at_its_maximum_is_a_warning(example: live.Rendered, kube: KubeServer, kubeconfig: Path) -> None:
    deploy(kube, example, skip=(("prod", "digits"),))
    objects = example.objects("prod", "digits")
    dep = live.deployment(objects["Deployment"], replicas=20)
    kube.put(dep)
    kube.put(live.replicaset(dep, dep["spec"]["template"], revision=1, replicas=20))
    kube.put(live.hpa(objects["HorizontalPodAutoscaler"], current=20, desired=24))
    kube.put(live.application(example.engine("prod", "digits"), revision=example.head))
    result = status(str(example.repo.path))
    assert result.exit_code == 0, result.stderr
    line = lines_of(result.stdout)["prod/digits"]
    assert line.startswith("! prod/digits") and "hpa 20->24 [2-20] max" in line and line.endswith("warning")
    assert (
        "    autoscaler at its maximum of 20 replicas: it cannot add capacity "
        "(TooManyReplicas: the desired replica count is more than the maximum replica count)"
    ) in result.stdout


def test_a_model_missing_from_the_cluster(example: live.Rendered, kube: KubeServer, kubeconfig: Path) -> None:
    deploy(kube, example, skip=(("staging", "digits"),))
    result = status(str(example.repo.path))
    assert result.exit_code == 1
    line = lines_of(result.stdout)["staging/digits"]
    assert line == "- staging/digits 1.0.0 - - - - missing"
    assert "    not in the cluster: no Deployment or Rollout ml-staging/digits" in result.stdout
    assert (
        "    no Application argocd/staging-digits deploys it (apply the rendered clusters/staging/ to the cluster)"
        in result.stdout
    )


def test_an_endpoint_git_no_longer_declares(
    example: live.Rendered, kube: KubeServer, kubeconfig: Path, tmp_path: Path
) -> None:
    deploy(kube, example)
    gone = live.Repo(tmp_path / "repo", example.repo.commits)
    shutil.copytree(example.repo.path, gone.path)
    (gone.path / "deployments" / "staging" / "digits.yaml").unlink()
    gone.commit("staging no longer runs digits")
    result = status(str(gone.path))
    assert result.exit_code == 1
    line = lines_of(result.stdout)["staging/digits"]
    assert line == f"+ staging/digits - 1.0.0 1/1 - Synced/Healthy @{example.head[:7]} extra"
    assert (
        "    runs in the cluster (Deployment ml-staging/digits, Application argocd/staging-digits) but git declares no "
        "deployments/staging/digits.yaml; its Application is still in the cluster: sync clusters/staging/ (with prune) to remove it"
    ) in result.stdout


def test_env_and_model_narrow_what_is_read(example: live.Rendered, kube: KubeServer, kubeconfig: Path) -> None:
    deploy(kube, example)
    result = status(str(example.repo.path), "--env", "prod", "--model", "iris")
    assert result.exit_code == 0, result.stderr
    assert list(lines_of(result.stdout)) == ["prod/iris"]
    assert not any("ml-staging" in s.path for s in kube.seen)


def test_an_argo_rollout_canary_half_way(
    example: live.Rendered, example_v2: live.Rendered, kube: KubeServer, kubeconfig: Path
) -> None:
    """A Rollout instead of the Deployment: the candidate at 50 % (setWeight 50, then a pause)."""
    deploy(kube, example_v2, skip=(("staging", "iris"),))
    kube.serve_crds("Rollout")
    objects = example_v2.objects("staging", "iris")
    rollout = live.deployment(objects["Deployment"], replicas=2, updated=1, ready=2, available=2)
    rollout.update(apiVersion="argoproj.io/v1alpha1", kind="Rollout")
    rollout["spec"]["strategy"] = {"canary": {"steps": [{"setWeight": 50}, {"pause": {}}, {"setWeight": 100}]}}
    old_template = example.objects("staging", "iris")["Deployment"]["spec"]["template"]
    stable = live.replicaset(rollout, old_template, revision=1, replicas=1)
    canary = live.replicaset(rollout, rollout["spec"]["template"], revision=2, replicas=1)
    rollout["status"].update(
        phase="Paused",
        message="CanaryPauseStep",
        currentStepIndex=1,
        stableRS=stable["metadata"]["labels"]["rollouts-pod-template-hash"],
        currentPodHash=canary["metadata"]["labels"]["rollouts-pod-template-hash"],
        pauseConditions=[{"reason": "CanaryPauseStep", "startTime": "2024-01-01T12:00:00Z"}],
    )
    kube.put(rollout)
    kube.put(stable)
    kube.put(canary)
    hpa = live.hpa(objects["HorizontalPodAutoscaler"], current=2)
    hpa["spec"]["scaleTargetRef"] = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "iris"}
    kube.put(hpa)
    kube.put(live.application(example_v2.engine("staging", "iris"), revision=example_v2.head, health="Suspended"))
    result = status(str(example_v2.repo.path))
    assert result.exit_code == 1
    line = lines_of(result.stdout)["staging/iris"]
    assert line.startswith(
        "~ staging/iris 1.1.0 1.1.0x1 canary 50%, 1.0.0x1 stable 2/2 hpa 2->2 [1-3]"
    ) and line.endswith("progressing")
    assert "    canary 1.1.0 at 50%, step 1/3 (paused: promote with `kubectl argo rollouts promote`)" in result.stdout
    assert "/apis/argoproj.io/v1alpha1/namespaces/ml-staging/rollouts" in {s.path for s in kube.seen}


def test_keda_scaled_object_and_its_hpa(example: live.Rendered, kube: KubeServer, kubeconfig: Path) -> None:
    deploy(kube, example, skip=(("prod", "iris"),))
    kube.serve_crds("ScaledObject")
    objects = example.objects("prod", "iris")
    dep = live.deployment(objects["Deployment"], replicas=5)
    kube.put(dep)
    kube.put(live.replicaset(dep, dep["spec"]["template"], revision=1, replicas=5))
    meta = {"name": "iris", "namespace": "ml-prod", "labels": dict(dep["metadata"]["labels"])}
    kube.put(
        {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "metadata": meta,
            "spec": {
                "scaleTargetRef": {"name": "iris"},
                "minReplicaCount": 3,
                "maxReplicaCount": 120,
                "triggers": [
                    {"type": "prometheus", "metadata": {"query": "sum(gitops_ml_in_flight)", "threshold": "4"}}
                ],
            },
            "status": {
                "hpaName": "keda-hpa-iris",
                "conditions": [
                    live.condition("Ready", "True", "ScaledObjectReady"),
                    live.condition("Active", "True", "ScalerActive"),
                ],
            },
        }
    )
    keda_hpa = live.hpa(objects["HorizontalPodAutoscaler"], current=5, desired=6)
    keda_hpa["metadata"] = {
        "name": "keda-hpa-iris",
        "namespace": "ml-prod",
        "labels": {"app.kubernetes.io/managed-by": "keda-operator"},
    }
    kube.put(keda_hpa)
    kube.put(live.application(example.engine("prod", "iris"), revision=example.head))
    result = status(str(example.repo.path))
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "keda 5->6 [3-120]" in lines_of(result.stdout)["prod/iris"]
