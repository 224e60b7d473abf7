"""Rendered objects -> live ones: what the API server holds once the engine applied a render and the
controllers (Deployment, ReplicaSet, HPA, Argo CD, Flux, Argo Rollouts) reported on it.

Every live object starts from `kustomize build` of this project's rendered overlays (or the
rendered engine objects) and only gains what a controller would add: uid, generation, status,
ReplicaSets and pods with their pod-template-hash.
"""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from render.render_helpers import Repo, run

from gitops_ml.adapters import kustomize

Obj = dict[str, Any]


@dataclass
class Rendered:
    """A committed repository, its render, and each endpoint's objects as `kustomize build` makes them."""

    repo: Repo
    head: str
    endpoints: dict[tuple[str, str], dict[str, Obj]] = field(default_factory=dict)  # (env, model) -> kind -> object
    engines: dict[tuple[str, str], Obj] = field(default_factory=dict)  # (env, model) -> Application | Kustomization

    def objects(self, env: str, model: str) -> dict[str, Obj]:
        return copy.deepcopy(self.endpoints[(env, model)])

    def engine(self, env: str, model: str) -> Obj:
        return copy.deepcopy(self.engines[(env, model)])


def render_and_build(repo: Repo, message: str) -> Rendered:
    """Render the repository, commit the render, and build every overlay with real Kustomize."""
    result = run("render", repo.path)
    assert result.exit_code == 0, result.stderr
    head = repo.commit(message)
    render_root = yaml.safe_load((repo.path / "gitops-ml.yaml").read_text()).get("renderRoot", "deploy")
    render_dir = repo.path / render_root
    out = Rendered(repo, head)
    overlays = sorted(
        p.parent for p in render_dir.glob("apps/*/*/kustomization.yaml") if p.parent.parent.name != "base"
    )
    for directory, objects in kustomize.build_many(kustomize.find_kustomize(), [overlays]):
        assert not isinstance(objects, Exception), objects
        env, model = directory.parent.name, directory.name
        out.endpoints[(env, model)] = {o["kind"]: o for o in objects}
    for path in sorted(render_dir.glob("clusters/*/*/*.yaml")):
        obj = yaml.safe_load(path.read_text())
        out.engines[(path.parent.parent.name, path.stem)] = obj
    for path in sorted(render_dir.glob("clusters/*/applicationset.yaml")):
        env = path.parent.name
        for overlay in sorted((render_dir / "apps" / env).iterdir()):
            out.engines[(env, overlay.name)] = generated_application(
                yaml.safe_load(path.read_text()), f"{render_root}/apps/{env}/{overlay.name}"
            )
    return out


def generated_application(appset: Obj, path: str) -> Obj:
    """The Application Argo CD's ApplicationSet controller makes from its git directory generator."""
    text = json.dumps(appset["spec"]["template"])
    text = text.replace("{{ .path.basename }}", path.rsplit("/", 1)[1]).replace("{{ .path.path }}", path)
    template = json.loads(text)
    template["metadata"]["namespace"] = appset["metadata"]["namespace"]
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", **template}


def copy_repo(source: Path, target: Path) -> Repo:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("deploy", "__pycache__"))
    return Repo(target)


def template_hash(template: Obj) -> str:
    # the controller hashes the template with FNV; any stable digest serves a test
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]


def uid(kind: str, namespace: str, name: str) -> str:
    return hashlib.sha256(f"{kind}/{namespace}/{name}".encode()).hexdigest()[:32]


def condition(type_: str, status: str, reason: str, message: str = "") -> Obj:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": "2024-01-01T12:00:00Z",
    }


def deployment(
    rendered: Obj,
    *,
    replicas: int,
    updated: int | None = None,
    ready: int | None = None,
    available: int | None = None,
    total: int | None = None,
    generation: int = 1,
    observed: int | None = None,
    progressing: Obj | None = None,
) -> Obj:
    """A Deployment as the API server holds it after the controller reported on it."""
    obj = copy.deepcopy(rendered)
    meta = obj["metadata"]
    meta["uid"] = uid("Deployment", meta["namespace"], meta["name"])
    meta["generation"] = generation
    obj["spec"]["replicas"] = replicas  # defaulted by the API server, then owned by the HPA
    updated = replicas if updated is None else updated
    ready = replicas if ready is None else ready
    available = ready if available is None else available
    rs = f"{meta['name']}-{template_hash(obj['spec']['template'])}"
    obj["status"] = {
        "observedGeneration": generation if observed is None else observed,
        "replicas": replicas if total is None else total,
        "updatedReplicas": updated,
        "readyReplicas": ready,
        "availableReplicas": available,
        "conditions": [
            condition(
                "Available",
                "True" if available >= replicas else "False",
                "MinimumReplicasAvailable" if available >= replicas else "MinimumReplicasUnavailable",
                "Deployment has minimum availability."
                if available >= replicas
                else "Deployment does not have minimum availability.",
            ),
            progressing
            or condition(
                "Progressing", "True", "NewReplicaSetAvailable", f'ReplicaSet "{rs}" has successfully progressed.'
            ),
        ],
    }
    return obj


def replicaset(owner: Obj, template: Obj, *, revision: int, replicas: int, ready: int | None = None) -> Obj:
    """The ReplicaSet a Deployment (or Rollout) controller made for one pod template."""
    meta = owner["metadata"]
    pod_hash = template_hash(template)
    label = "rollouts-pod-template-hash" if owner["kind"] == "Rollout" else "pod-template-hash"
    template = copy.deepcopy(template)
    template["metadata"].setdefault("labels", {})[label] = pod_hash
    ready = replicas if ready is None else ready
    revision_key = "rollout.argoproj.io/revision" if owner["kind"] == "Rollout" else "deployment.kubernetes.io/revision"
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"{meta['name']}-{pod_hash}",
            "namespace": meta["namespace"],
            "labels": dict(template["metadata"]["labels"]),
            "annotations": {revision_key: str(revision)},
            "ownerReferences": [
                {
                    "apiVersion": owner["apiVersion"],
                    "kind": owner["kind"],
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                }
            ],
        },
        "spec": {"replicas": replicas, "selector": owner["spec"]["selector"], "template": template},
        "status": {"replicas": replicas, "readyReplicas": ready, "availableReplicas": ready, "observedGeneration": 1},
    }


def pod(rs: Obj, index: int, *, waiting: tuple[str, str] | None = None, restarts: int = 0) -> Obj:
    """A pod of a ReplicaSet; `waiting` = (reason, message) of a container that cannot start."""
    template = rs["spec"]["template"]
    ready = waiting is None
    state: Obj = (
        {"running": {"startedAt": "2024-01-01T12:00:00Z"}}
        if ready
        else {"waiting": {"reason": waiting[0], "message": waiting[1]}}
    )
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{rs['metadata']['name']}-{index:05d}",
            "namespace": rs["metadata"]["namespace"],
            "labels": dict(template["metadata"]["labels"]),
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": rs["metadata"]["name"],
                    "uid": "x",
                    "controller": True,
                }
            ],
        },
        "spec": copy.deepcopy(template["spec"]),
        "status": {
            "phase": "Running" if ready else "Pending",
            "conditions": [condition("Ready", "True" if ready else "False", "" if ready else "ContainersNotReady")],
            "containerStatuses": [
                {
                    "name": "model",
                    "ready": ready,
                    "restartCount": restarts,
                    "image": template["spec"]["containers"][0]["image"],
                    "state": state,
                }
            ],
        },
    }


def hpa(rendered: Obj, *, current: int, desired: int | None = None) -> Obj:
    obj = copy.deepcopy(rendered)
    desired = current if desired is None else desired
    limited = desired >= obj["spec"]["maxReplicas"]
    obj["status"] = {
        "currentReplicas": current,
        "desiredReplicas": desired,
        "conditions": [
            condition("AbleToScale", "True", "ReadyForNewScale", "recommended size matches current size"),
            condition(
                "ScalingActive",
                "True",
                "ValidMetricFound",
                "the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)",
            ),
            condition(
                "ScalingLimited",
                "True" if limited else "False",
                "TooManyReplicas" if limited else "DesiredWithinRange",
                "the desired replica count is more than the maximum replica count"
                if limited
                else "the desired count is within the acceptable range",
            ),
        ],
    }
    return obj


def application(
    rendered: Obj, *, revision: str, sync: str = "Synced", health: str = "Healthy", conditions: list[Obj] | None = None
) -> Obj:
    """An Argo CD Application with the status the application controller writes."""
    obj = copy.deepcopy(rendered)
    obj["status"] = {
        "sync": {
            "status": sync,
            "revision": revision,
            "comparedTo": {"source": obj["spec"]["source"], "destination": obj["spec"]["destination"]},
        },
        "health": {"status": health},
        "operationState": {
            "phase": "Succeeded",
            "message": "successfully synced (all tasks run)",
            "syncResult": {"revision": revision},
        },
        "reconciledAt": "2024-01-01T12:00:00Z",
        "sourceType": "Kustomize",
    }
    if conditions:
        obj["status"]["conditions"] = conditions
    return obj


def kustomization(
    rendered: Obj, *, revision: str, ready: str = "True", reason: str = "ReconciliationSucceeded", message: str = ""
) -> Obj:
    """A Flux Kustomization with the status kustomize-controller writes (`main@sha1:<commit>` revisions)."""
    obj = copy.deepcopy(rendered)
    rev = f"main@sha1:{revision}"
    obj["status"] = {
        "observedGeneration": 1,
        "lastAppliedRevision": rev,
        "lastAttemptedRevision": rev,
        "conditions": [condition("Ready", ready, reason, message or f"Applied revision: {rev}")],
    }
    return obj


def healthy(objects: dict[str, Obj], replicas: int) -> list[Obj]:
    """A settled endpoint: its Deployment fully rolled out, one ReplicaSet, and its HPA (when rendered)."""
    dep = deployment(objects["Deployment"], replicas=replicas)
    out = [dep, replicaset(dep, dep["spec"]["template"], revision=1, replicas=replicas)]
    if "HorizontalPodAutoscaler" in objects:
        out.append(hpa(objects["HorizontalPodAutoscaler"], current=replicas))
    return out
