"""Objects of an endpoint's candidates (rollout.canary, rollout.shadow) and of Argo Rollouts.

Gateway API (the default): each candidate runs in its own Deployment and Service `<model>-<track>`
(names never carry a version), the HTTPRoute splits traffic by weight and mirrors it. Argo Rollouts:
the endpoint is a Rollout whose template runs the candidate, with canary steps gated by an
AnalysisTemplate whose queries are rollout.queries' (the ones `canary status` runs); a shadow is
still a Deployment of its own. Candidates' pods never carry the stable selector, so the stable
Service, PodDisruptionBudget and NetworkPolicy never select them. Plain dicts; no I/O.
"""

from __future__ import annotations

import copy
import hashlib
import math
import re
from typing import Any

from gitops_ml.render import objects
from gitops_ml.render.planning import Candidate, Endpoint, ResolvedVersion
from gitops_ml.rollout.queries import criteria
from gitops_ml.types import ModelName, RepositorySpec

Obj = dict[str, Any]

TRACK_LABEL = "gitops-ml.dev/track"
MODEL_LABEL = "gitops-ml.dev/model"
CANARY = "canary"
SHADOW = "shadow"
GATEWAY_PLUGIN = "argoproj-labs/gatewayAPI"
# the weight a canary reaches before Argo Rollouts promotes it fully, when it starts below
SECOND_STEP = 50


def candidate_name(model: ModelName, track: str) -> str:
    return f"{model}-{track}"


def candidate_image(model: ModelName, track: str) -> str:
    """The image a candidate's container names in the overlay; the kustomization's `images` maps it
    to the candidate's own content-addressed image (a tag alone would be overwritten by the stable's)."""
    return candidate_name(model, track)


def settings_name(ep: Endpoint, track: str) -> str:
    return f"{candidate_name(ep.model, track)}{objects.SETTINGS_SUFFIX}"


def version_slug(version: ResolvedVersion) -> str:
    return re.sub(r"[^a-z0-9.-]", "-", str(version.model.version).lower())


def settings_config_map(repo: RepositorySpec, ep: Endpoint, version: ResolvedVersion) -> Obj:
    """With Argo Rollouts the stable ReplicaSet keeps the settings it started with while the template
    runs the candidate: each version's settings are a ConfigMap named by version and content, written
    out (kustomize rewrites generated names only in kinds it knows, and a Rollout is not one), so a
    settings change rolls the pods and promotion renames nothing."""
    data = ep.settings_of(version)
    digest = hashlib.sha256("".join(f"{k}={v}\n" for k, v in data.items()).encode()).hexdigest()[:10]
    name = f"{ep.model}{objects.SETTINGS_SUFFIX}-{version_slug(version)}-{digest}"
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": objects.base_labels(repo, ep.model)}, "data": data}


def candidate_labels(repo: RepositorySpec, model: ModelName, track: str) -> dict[str, str]:
    labels = objects.base_labels(repo, model)
    labels["app.kubernetes.io/name"] = candidate_name(model, track)
    labels[MODEL_LABEL] = model
    labels[TRACK_LABEL] = track
    return labels


# --- a full pod template: the base Deployment's with the overlay's patch applied ------------------


def _merge(base: Any, patch: Any) -> Any:
    """Strategic merge as Kubernetes does it for the fields a rendered pod template has: mappings
    merge, lists of named items merge by name, anything else is replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            out[key] = _merge(base[key], value) if key in base else copy.deepcopy(value)
        return out
    if isinstance(base, list) and isinstance(patch, list) and all(isinstance(i, dict) and "name" in i for i in [*base, *patch]):
        merged = {item["name"]: copy.deepcopy(item) for item in base}
        order = [item["name"] for item in base]
        for item in patch:
            if item["name"] in merged:
                merged[item["name"]] = _merge(merged[item["name"]], item)
            else:
                merged[item["name"]] = copy.deepcopy(item)
                order.append(item["name"])
        return [merged[name] for name in order]
    return copy.deepcopy(patch)


def pod_template(repo: RepositorySpec, ep: Endpoint, version: ResolvedVersion, *, labels: dict[str, str], settings: str, image: str) -> Obj:
    """The pod template kustomize builds for the stable Deployment, for another version and names."""
    base = objects.base_deployment(repo, ep.model)["spec"]["template"]
    patch = objects.deployment_patch(ep, version)["spec"]["template"]
    template: Obj = _merge(base, patch)
    template["metadata"]["labels"] = {**labels, "app.kubernetes.io/version": objects.version_label(version)}
    container = template["spec"]["containers"][0]
    container["image"] = image
    container["envFrom"] = objects.env_from(ep, settings)
    return template


# --- Gateway API: a Deployment and Service per candidate -------------------------------------------


def candidate_replicas(ep: Endpoint, candidate: Candidate) -> int:
    """Without an autoscaler: the candidate's share of the stable replicas, at least one."""
    return max(1, math.ceil(ep.deployment.replicas * candidate.share / 100))


def candidate_deployment(repo: RepositorySpec, ep: Endpoint, candidate: Candidate) -> Obj:
    name = candidate_name(ep.model, candidate.track)
    labels = candidate_labels(repo, ep.model, candidate.track)
    template = pod_template(repo, ep, candidate.version, labels=labels, settings=settings_name(ep, candidate.track), image=candidate_image(ep.model, candidate.track))
    spec: Obj = {
        "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
        "revisionHistoryLimit": 5,
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}},
        "template": template,
    }
    if not ep.deployment.autoscaling.enabled:
        spec["replicas"] = candidate_replicas(ep, candidate)
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": labels}, "spec": spec}


def candidate_service(repo: RepositorySpec, ep: Endpoint, track: str) -> Obj:
    """`<model>-<track>`; with Argo Rollouts the canary Service selects the Rollout's pods, and the
    controller adds the pod-template hash that tells the canary ReplicaSet's apart."""
    name = candidate_name(ep.model, track)
    selected = ep.model if (ep.argo_rollouts and track == CANARY) else name
    service = objects.base_service(repo, ep.model)
    service["metadata"] = {"name": name, "labels": candidate_labels(repo, ep.model, track)}
    service["spec"]["selector"] = {"app.kubernetes.io/name": selected}
    return service


def candidate_network_policy(ep: Endpoint, track: str) -> Obj:
    policy = objects.network_policy(ep)
    name = candidate_name(ep.model, track)
    policy["metadata"] = {"name": name}
    policy["spec"]["podSelector"] = {"matchLabels": {"app.kubernetes.io/name": name}}
    return policy


def candidate_autoscaler(ep: Endpoint, track: str) -> Obj:
    """The stable version's autoscaler for the candidate's Deployment, from one replica."""
    name = candidate_name(ep.model, track)
    target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
    if ep.deployment.autoscaling.metric == "concurrency":
        scaler = objects.scaled_object(ep, track=track, target=target)
        scaler["spec"]["minReplicaCount"] = 1
    else:
        scaler = objects.hpa(ep, target=target)
        scaler["spec"]["minReplicas"] = 1
    scaler["metadata"] = {"name": name}
    return scaler


def route_rule_traffic(ep: Endpoint) -> tuple[list[Obj], list[Obj]]:
    """(backendRefs, filters) of the HTTPRoute's rule: the stable Service, the canary's share, the mirror."""
    stable: Obj = {"name": ep.model, "port": objects.SERVICE_PORT}
    refs = [stable]
    canary = ep.candidate(CANARY)
    if canary is not None:
        # with Argo Rollouts the controller moves the weights (the Application ignores them): it starts all-stable
        weight = 0 if ep.argo_rollouts else canary.share
        stable["weight"] = 100 - weight
        refs.append({"name": candidate_name(ep.model, CANARY), "port": objects.SERVICE_PORT, "weight": weight})
    filters: list[Obj] = []
    shadow = ep.candidate(SHADOW)
    if shadow is not None:
        mirror: Obj = {"backendRef": {"name": candidate_name(ep.model, SHADOW), "port": objects.SERVICE_PORT}}
        if shadow.share < 100:
            mirror["percent"] = shadow.share
        filters.append({"type": "RequestMirror", "requestMirror": mirror})
    return refs, filters


# --- Argo Rollouts ---------------------------------------------------------------------------------


def template_version(ep: Endpoint) -> ResolvedVersion:
    """What the Rollout's template runs: the canary while one is declared, else the stable version."""
    canary = ep.candidate(CANARY)
    return canary.version if canary is not None else ep.version


def rollout_steps(ep: Endpoint) -> list[Obj]:
    """setWeight to the declared weight, wait the analysis window, analyse; once more at 50 % when
    the canary starts below it; then Argo Rollouts promotes fully. No canary: no steps (a rolling update)."""
    canary = ep.candidate(CANARY)
    if canary is None:
        return []
    window = ep.deployment.rollout.analysis.window
    weights = [canary.share] + ([SECOND_STEP] if canary.share < SECOND_STEP else [])
    steps: list[Obj] = []
    for weight in weights:
        steps += [
            {"setWeight": weight},
            {"pause": {"duration": window}},
            {"analysis": {"templates": [{"templateName": ep.model}]}},
        ]
    return steps


def rollout(repo: RepositorySpec, ep: Endpoint) -> Obj:
    dep = ep.deployment
    version = template_version(ep)
    # the overlay's labels reach the templates of the kinds kustomize knows; a Rollout's gets them here
    labels = {**objects.base_labels(repo, ep.model), **objects.endpoint_labels(ep)}
    settings = settings_config_map(repo, ep, version)["metadata"]["name"]
    template = pod_template(repo, ep, version, labels=labels, settings=settings, image=objects.image_name(repo, ep.model))
    canary: Obj = {
        "maxSurge": "25%",
        "maxUnavailable": 0,  # never below the wanted capacity, as the Deployment it replaces
        "steps": rollout_steps(ep),
    }
    exposure = dep.exposure
    if ep.candidate(CANARY) is not None and exposure is not None and exposure.type == "httproute":
        # without a canary there is no canary Service: a change of the template then rolls like a Deployment
        canary["stableService"] = ep.model
        canary["canaryService"] = candidate_name(ep.model, CANARY)
        canary["trafficRouting"] = {"plugins": {GATEWAY_PLUGIN: {"httpRoute": ep.model, "namespace": ep.environment.namespace}}}
    spec: Obj = {
        "selector": {"matchLabels": objects.selector(ep.model)},
        "revisionHistoryLimit": 5,
        "template": template,
        "strategy": {"canary": canary},
    }
    if not dep.autoscaling.enabled:
        spec["replicas"] = dep.replicas
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": ep.model, "labels": objects.base_labels(repo, ep.model)}, "spec": spec}


def analysis_template(ep: Endpoint) -> Obj:
    """The canary's criteria as Prometheus metrics; no sample is inconclusive, which pauses the rollout."""
    comparison = ep.comparison
    assert comparison is not None
    metrics = [
        {
            "name": criterion.measure.value,
            "count": 1,
            "successCondition": criterion.success_condition,
            "failureCondition": criterion.failure_condition,
            "provider": {"prometheus": {"address": ep.environment.prometheus, "query": criterion.query}},
        }
        for criterion in criteria(comparison)
    ]
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate", "metadata": {"name": ep.model}, "spec": {"metrics": metrics}}


def delete_deployment(model: ModelName) -> Obj:
    """A patch that removes the base's Deployment: with Argo Rollouts the Rollout runs the pods."""
    return {"$patch": "delete", "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": model}}
