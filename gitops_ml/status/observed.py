"""The API's JSON -> the status stage's observations (pure).

Reads only fields the Kubernetes, Argo CD, Argo Rollouts, Flux and KEDA APIs document, and
tolerates any of them missing (an object the controller has not seen yet has no status).
"""

from __future__ import annotations

import re
from typing import Any

from gitops_ml.status.model import (
    Autoscaler,
    Condition,
    EngineState,
    Pod,
    PodTemplate,
    RenderedKeys,
    ReplicaSet,
    RolloutState,
    ScaledObject,
    Workload,
)

Obj = dict[str, Any]

_COMMIT = re.compile(r"\b([0-9a-f]{40}|[0-9a-f]{64})\b")
# waiting reasons that mean a pod will not become ready by itself
_STUCK = {
    "ImagePullBackOff", "ErrImagePull", "CrashLoopBackOff", "CreateContainerConfigError",
    "CreateContainerError", "InvalidImageName", "RunContainerError",
}


def _d(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def _l(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _i(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _s(value: Any) -> str:
    return "" if value is None else str(value)


def conditions(status: Obj) -> tuple[Condition, ...]:
    return tuple(
        Condition(_s(c.get("type")), _s(c.get("status")), _s(c.get("reason")), _s(c.get("message")).strip())
        for c in map(_d, _l(status.get("conditions")))
    )


def commit_of(revision: str) -> str | None:
    """The commit id in an engine's revision: Argo CD's bare sha, Flux's `main@sha1:<sha>` or `main/<sha>`."""
    match = _COMMIT.search(revision or "")
    return match.group(1) if match else None


def pod_template(template: Obj, keys: RenderedKeys) -> PodTemplate:
    meta = _d(template.get("metadata"))
    labels, annotations = _d(meta.get("labels")), _d(meta.get("annotations"))
    containers = [_d(c) for c in _l(_d(template.get("spec")).get("containers"))]
    container = next((c for c in containers if c.get("name") == keys.container), containers[0] if containers else {})
    image = _s(container.get("image")) or None
    tag = annotations.get(keys.image_tag_annotation)
    if tag is None and image:
        # before render wrote the annotation: the tag of the image reference (no digest-only refs)
        name = image.split("@", 1)[0]
        tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else None
    version = annotations.get(keys.version_annotation) or labels.get(keys.version_label)
    return PodTemplate(
        _s(version) or None, _s(tag) or None, image, _s(annotations.get(keys.revision_annotation)) or None
    )


def _workload_base(obj: Obj, keys: RenderedKeys) -> dict[str, Any]:
    meta, spec, status = _d(obj.get("metadata")), _d(obj.get("spec")), _d(obj.get("status"))
    labels = _d(meta.get("labels"))
    replicas = spec.get("replicas")
    return {
        "kind": _s(obj.get("kind")),
        "name": _s(meta.get("name")),
        "namespace": _s(meta.get("namespace")),
        "uid": _s(meta.get("uid")),
        "environment": labels.get(keys.environment),
        "model": labels.get(keys.name),
        "generation": _i(meta.get("generation")),
        "observed_generation": _i(status.get("observedGeneration")),
        "template": pod_template(_d(spec.get("template")), keys),
        "spec_replicas": None if replicas is None else _i(replicas),
        "replicas": _i(status.get("replicas")),
        "updated": _i(status.get("updatedReplicas")),
        "ready": _i(status.get("readyReplicas")),
        "available": _i(status.get("availableReplicas")),
        "conditions": conditions(status),
        "paused": bool(spec.get("paused")),
    }


def deployment(obj: Obj, keys: RenderedKeys) -> Workload:
    return Workload(**_workload_base(obj, keys))


def _rollout_weight(spec: Obj, status: Obj, step: int | None) -> int | None:
    canary = _d(status.get("canary"))
    weights = _d(canary.get("weights"))
    if "canary" in weights:
        return _i(_d(weights["canary"]).get("weight"))
    steps = [_d(s) for s in _l(_d(_d(spec.get("strategy")).get("canary")).get("steps"))]
    if step is None or not steps:
        return None
    if step >= len(steps):
        return 100
    # without traffic routing the weight is the last setWeight reached (as `kubectl argo rollouts` shows it)
    for s in reversed(steps[: step + 1]):
        if "setWeight" in s:
            return _i(s["setWeight"])
    return 0


def rollout(obj: Obj, keys: RenderedKeys) -> Workload:
    spec, status = _d(obj.get("spec")), _d(obj.get("status"))
    base = _workload_base(obj, keys)
    step = status.get("currentStepIndex")
    step_i = None if step is None else _i(step)
    steps = len(_l(_d(_d(spec.get("strategy")).get("canary")).get("steps")))
    state = RolloutState(
        phase=_s(status.get("phase")),
        message=_s(status.get("message")),
        canary_weight=_rollout_weight(spec, status, step_i),
        step=step_i,
        steps=steps,
        stable_hash=_s(status.get("stableRS")),
        current_hash=_s(status.get("currentPodHash")),
        aborted=bool(status.get("abort")),
    )
    base["paused"] = bool(spec.get("paused")) or bool(_l(status.get("pauseConditions")))
    return Workload(**base, rollout=state)


def replicaset(obj: Obj, keys: RenderedKeys) -> ReplicaSet:
    meta, spec, status = _d(obj.get("metadata")), _d(obj.get("spec")), _d(obj.get("status"))
    labels, annotations = _d(meta.get("labels")), _d(meta.get("annotations"))
    owner = next((_d(o) for o in _l(meta.get("ownerReferences")) if _d(o).get("controller")), {})
    return ReplicaSet(
        name=_s(meta.get("name")),
        namespace=_s(meta.get("namespace")),
        owner_uid=_s(owner.get("uid")),
        template=pod_template(_d(spec.get("template")), keys),
        pod_hash=_s(labels.get("pod-template-hash") or labels.get("rollouts-pod-template-hash")),
        revision=_i(annotations.get("deployment.kubernetes.io/revision") or annotations.get("rollout.argoproj.io/revision")),
        replicas=_i(status.get("replicas")),
        ready=_i(status.get("readyReplicas")),
        available=_i(status.get("availableReplicas")),
    )


def autoscaler(obj: Obj) -> Autoscaler:
    meta, spec, status = _d(obj.get("metadata")), _d(obj.get("spec")), _d(obj.get("status"))
    target = _d(spec.get("scaleTargetRef"))
    return Autoscaler(
        name=_s(meta.get("name")),
        namespace=_s(meta.get("namespace")),
        target_kind=_s(target.get("kind")),
        target_name=_s(target.get("name")),
        min_replicas=_i(spec.get("minReplicas"), 1),
        max_replicas=_i(spec.get("maxReplicas")),
        current=_i(status.get("currentReplicas")),
        desired=_i(status.get("desiredReplicas")),
        conditions=conditions(status),
    )


def scaled_object(obj: Obj) -> ScaledObject:
    meta, spec, status = _d(obj.get("metadata")), _d(obj.get("spec")), _d(obj.get("status"))
    low, high = spec.get("minReplicaCount"), spec.get("maxReplicaCount")
    return ScaledObject(
        name=_s(meta.get("name")),
        namespace=_s(meta.get("namespace")),
        target_name=_s(_d(spec.get("scaleTargetRef")).get("name")),
        min_replicas=None if low is None else _i(low),
        max_replicas=None if high is None else _i(high),
        # KEDA names its HPA keda-hpa-<name> unless told otherwise
        hpa_name=_s(status.get("hpaName")) or f"keda-hpa-{_s(meta.get('name'))}",
        conditions=conditions(status),
    )


def pod(obj: Obj) -> Pod:
    meta, status = _d(obj.get("metadata")), _d(obj.get("status"))
    labels = _d(meta.get("labels"))
    problems: list[str] = []
    for cs in map(_d, _l(status.get("containerStatuses"))):
        state = _d(cs.get("state"))
        waiting, terminated = _d(state.get("waiting")), _d(state.get("terminated"))
        restarts = _i(cs.get("restartCount"))
        if waiting.get("reason") in _STUCK:
            text = _s(waiting.get("reason"))
            last = _d(_d(cs.get("lastState")).get("terminated"))
            if restarts:
                text += f" (restarted {restarts} times" + (f", last exit: {last.get('reason')}" if last.get("reason") else "") + ")"
            if waiting.get("message"):
                text += f": {_s(waiting.get('message')).strip()}"
            problems.append(text)
        elif terminated.get("reason") and terminated.get("reason") != "Completed":
            problems.append(f"{terminated.get('reason')}: {_s(terminated.get('message')).strip()}".rstrip(": "))
    for cond in conditions(status):
        if cond.type == "PodScheduled" and cond.status == "False":
            problems.append(f"{cond.reason or 'Unschedulable'}: {cond.message}".rstrip(": "))
    ready = any(c.type == "Ready" and c.status == "True" for c in conditions(status))
    return Pod(
        name=_s(meta.get("name")),
        namespace=_s(meta.get("namespace")),
        pod_hash=_s(labels.get("pod-template-hash") or labels.get("rollouts-pod-template-hash")),
        phase=_s(status.get("phase")),
        ready=ready,
        problems=tuple(problems),
    )


def application(obj: Obj, keys: RenderedKeys) -> EngineState:
    meta, spec, status = _d(obj.get("metadata")), _d(obj.get("spec")), _d(obj.get("status"))
    labels = _d(meta.get("labels"))
    sync, health = _d(status.get("sync")), _d(status.get("health"))
    operation = _d(status.get("operationState"))
    revision = _s(sync.get("revision")) or next((_s(r) for r in _l(sync.get("revisions")) if r), "")
    messages = [c.message for c in conditions(status) if c.message]
    if operation.get("phase") in ("Failed", "Error") and operation.get("message"):
        messages.insert(0, f"sync {str(operation['phase']).lower()}: {_s(operation.get('message')).strip()}")
    if health.get("message"):
        messages.append(_s(health.get("message")).strip())
    return EngineState(
        kind="Application",
        name=_s(meta.get("name")),
        namespace=_s(meta.get("namespace")),
        environment=labels.get(keys.environment),
        model=labels.get(keys.name),
        revision=commit_of(revision),
        sync=_s(sync.get("status")) or None,
        health=_s(health.get("status")) or None,
        message="; ".join(messages),
        suspended=not _d(spec.get("syncPolicy")).get("automated"),
        operation=_s(operation.get("phase")),
    )


def kustomization(obj: Obj, keys: RenderedKeys) -> EngineState:
    meta, spec, status = _d(obj.get("metadata")), _d(obj.get("spec")), _d(obj.get("status"))
    labels = _d(meta.get("labels"))
    conds = conditions(status)
    ready = next((c for c in conds if c.type == "Ready"), None)
    return EngineState(
        kind="Kustomization",
        name=_s(meta.get("name")),
        namespace=_s(meta.get("namespace")),
        environment=labels.get(keys.environment),
        model=labels.get(keys.name),
        revision=commit_of(_s(status.get("lastAppliedRevision"))),
        ready=ready,
        message=ready.message if ready is not None else "",
        suspended=bool(spec.get("suspend")),
    )
