"""What git declares, as status needs it: the one place the status stage touches render's plan.

`load_desired` plans the repository (validation, version resolution; no render root is read or
written) and `desired_from_plan` keeps, per endpoint, what render writes into the cluster.
When the plan moves (gitops_ml/render/, a Repository handle), only this module changes.
"""

from __future__ import annotations

from typing import Iterable

from gitops_ml.history.tags import format_tag
from gitops_ml.render import engines, objects
from gitops_ml.render.planning import Endpoint, Plan
from gitops_ml.render.service import plan_repository
from gitops_ml.repo.handle import Repository
from gitops_ml.status.model import (
    Desired,
    DesiredEndpoint,
    DesiredEnvironment,
    DesiredScaling,
    DesiredVersion,
    EngineRef,
    RenderedKeys,
)
from gitops_ml.types import ModelName

KEYS = RenderedKeys(
    managed_by=("app.kubernetes.io/managed-by", objects.MANAGED_BY),
    part_of="app.kubernetes.io/part-of",
    name="app.kubernetes.io/name",
    environment=objects.ENV_LABEL,
    version_label=objects.VERSION_LABEL,
    version_annotation=objects.VERSION_ANNOTATION,
    image_tag_annotation=objects.IMAGE_TAG_ANNOTATION,
    revision_annotation=objects.REVISION_ANNOTATION,
    container=objects.CONTAINER,
)


def _desired_endpoint(ep: Endpoint) -> DesiredEndpoint:
    dep, env, version = ep.deployment, ep.environment, ep.version
    auto = dep.autoscaling
    return DesiredEndpoint(
        environment=env.name,
        model=ep.model,
        namespace=env.namespace,
        source_path=ep.source_path,
        stable=DesiredVersion(
            version=version.model.version,
            image_tag=version.image.rsplit(":", 1)[1],
            revision=format_tag(ep.model, version.model.version),
            commit=version.commit,
        ),
        engine=EngineRef(env.engine, env.engine_namespace, engines.object_name(env, ep.model), env.auto_sync),
        replicas=None if auto.enabled else dep.replicas,
        autoscaling=DesiredScaling(auto.min_replicas, auto.max_replicas) if auto.enabled else None,
    )


def desired_from_plan(plan: Plan, models: Iterable[str] = ()) -> Desired:
    """Git's side of the comparison: every planned endpoint (of `models` when given)."""
    wanted = {ModelName(m) for m in models}
    environments = tuple(
        DesiredEnvironment(env.name, env.namespace, env.engine, env.engine_namespace) for env in plan.environments
    )
    endpoints = tuple(_desired_endpoint(ep) for ep in plan.endpoints if not wanted or ep.model in wanted)
    return Desired(plan.repository.name, KEYS, environments, endpoints, tuple(sorted(wanted)))


def load_desired(repository: Repository, environments: Iterable[str] = (), models: Iterable[str] = ()) -> Desired:
    """Plan the repository (only `environments` when given) and keep what status compares."""
    envs = list(environments)
    plan = plan_repository(repository, envs or None, deep=False)  # locks, samples and score.py do not change what runs
    return desired_from_plan(plan, models)
