"""`gitops-ml status --watch`: one list per read, then the watch API (never a poll loop), until every
endpoint settles or --timeout passes. The server moves the rollout on when the client's watch opens."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.status import live
from tests.status.kube_server import KubeServer
from tests.status.scenarios import deploy, status

pytestmark = pytest.mark.kustomize


def _half_way(kube: KubeServer, old: live.Rendered, new: live.Rendered) -> tuple[dict, dict, dict]:
    """staging/iris rolling from 1.0.0 to 1.1.0: (deployment, old ReplicaSet, new ReplicaSet)."""
    deploy(kube, new, skip=(("staging", "iris"),))
    objects = new.objects("staging", "iris")
    dep = live.deployment(
        objects["Deployment"],
        replicas=2,
        updated=1,
        ready=3,
        available=3,
        total=3,
        progressing=live.condition("Progressing", "True", "ReplicaSetUpdated", "progressing"),
    )
    old_rs = live.replicaset(
        dep, old.objects("staging", "iris")["Deployment"]["spec"]["template"], revision=1, replicas=2
    )
    new_rs = live.replicaset(dep, dep["spec"]["template"], revision=2, replicas=1)
    for obj in (
        dep,
        old_rs,
        new_rs,
        live.hpa(objects["HorizontalPodAutoscaler"], current=2),
        live.application(new.engine("staging", "iris"), revision=new.head, health="Progressing"),
    ):
        kube.put(obj)
    return dep, old_rs, new_rs


def _finish(kube: KubeServer, new: live.Rendered, dep: dict, old_rs: dict, new_rs: dict) -> None:
    """What the controllers write as the rollout completes: new ReplicaSet up, old one down, Argo CD healthy."""
    new_rs["status"].update(replicas=2, readyReplicas=2, availableReplicas=2)
    new_rs["spec"]["replicas"] = 2
    kube.put(new_rs)
    old_rs["status"].update(replicas=0, readyReplicas=0, availableReplicas=0)
    old_rs["spec"]["replicas"] = 0
    kube.put(old_rs)
    done = live.deployment(new.objects("staging", "iris")["Deployment"], replicas=2)
    kube.put(done)
    kube.put(live.application(new.engine("staging", "iris"), revision=new.head))


def test_watch_waits_until_the_rollout_completes(
    example: live.Rendered, example_v2: live.Rendered, kube: KubeServer, kubeconfig: Path
) -> None:
    dep, old_rs, new_rs = _half_way(kube, example, example_v2)
    kube.on_watch[("deployments", "ml-staging")] = lambda: _finish(kube, example_v2, dep, old_rs, new_rs)
    result = status(str(example_v2.repo.path), "--watch", "--timeout", "60")
    assert result.exit_code == 0, result.stdout + result.stderr
    out = result.stdout.splitlines()
    first = next(line for line in out if "staging/iris" in line)
    assert first.startswith("~ staging/iris") and first.endswith("progressing")
    last = [line for line in out if "staging/iris" in line][-1]
    assert last.startswith("[") and "s]   staging/iris" in last and last.endswith("ok")
    # after the first table, only what changed is printed again
    # (a slow machine may also see an intermediate progressing line: "[2.1 s] ~ staging/iris ...")
    assert {next(t for t in line.split() if "/" in t) for line in out if line.startswith("[")} == {"staging/iris"}
    assert out[-1].startswith("4 endpoint(s): 4 ok (")
    lists = [s for s in kube.calls(watch=False) if "/namespaces/" in s.path and s.path.count("/") > 4]
    watches = kube.calls(watch=True)
    # each read listed once, then watched from the version its list returned: no polling
    assert len({s.path for s in lists}) == len(lists)
    assert {s.path for s in watches} == {s.path for s in lists}
    assert all(int(w.query["resourceVersion"]) > 0 and int(w.query["timeoutSeconds"]) <= 60 for w in watches)
    assert all(w.query["allowWatchBookmarks"] in ("true", "True") for w in watches)  # kubernetes<37 sends "True"
    # pods are watched too, so a stuck pod's reason shows up while waiting
    assert "/api/v1/namespaces/ml-staging/pods" in {s.path for s in watches}


def test_watch_gives_up_at_the_timeout(
    example: live.Rendered, example_v2: live.Rendered, kube: KubeServer, kubeconfig: Path
) -> None:
    _half_way(kube, example, example_v2)
    result = status(str(example_v2.repo.path), "--watch", "--timeout", "1")
    assert result.exit_code == 1
    assert (
        result.stderr
        == "error: gave up after 1 s: 1 endpoint(s) did not settle\nhint: see the reasons above; --timeout waits longer\n"
    )
    assert result.stdout.splitlines()[-1].startswith("4 endpoint(s): 3 ok, 1 progressing (")


def test_watch_lists_again_when_its_version_expired(
    example: live.Rendered, example_v2: live.Rendered, kube: KubeServer, kubeconfig: Path
) -> None:
    """410 Gone (the history was compacted): list that read again, then watch from the new version."""
    dep, old_rs, new_rs = _half_way(kube, example, example_v2)

    def compact_then_finish() -> None:
        _finish(kube, example_v2, dep, old_rs, new_rs)
        kube.compact()

    kube.on_watch[("deployments", "ml-staging")] = compact_then_finish
    result = status(str(example_v2.repo.path), "--watch", "--timeout", "60", "--format", "json")
    assert result.exit_code == 0, result.stdout + result.stderr
    relists = [s for s in kube.calls(watch=False) if s.path == "/apis/apps/v1/namespaces/ml-staging/deployments"]
    assert len(relists) == 2


def test_watch_of_a_settled_cluster_returns_at_once(example: live.Rendered, kube: KubeServer, kubeconfig: Path) -> None:
    deploy(kube, example)
    result = status(str(example.repo.path), "--watch", "--timeout", "60")
    assert result.exit_code == 0, result.stderr
    assert kube.calls(watch=True) == []
