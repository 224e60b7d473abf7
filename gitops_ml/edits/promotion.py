"""Promote and rollback: an environment's pin moved forward or back, or, with a canary declared or
asked for, the canary's steps (edits.canary). Builds on the checks of edits.plans; returns an EditPlan.
Nothing here writes or prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from gitops_ml.edits import canary as steps
from gitops_ml.edits.plans import (
    Change,
    EditKind,
    EditPlan,
    _changed_text_doc,
    _deployment,
    _history,
    _read_spec,
    _registered,
    _require,
    _running,
)
from gitops_ml.errors import EditError, UsageError
from gitops_ml.repo.editing import SetValue, plan_file_edit
from gitops_ml.repo.handle import Repository
from gitops_ml.types import Kind, ModelName, ModelSpec, Version


def _pin_plan(
    repository: Repository,
    kind: EditKind,
    model: str,
    environment: str,
    rel: str,
    old: Version,
    new: Version,
    versions: Mapping[Version, ModelSpec],
    notes: tuple[str, ...] = (),
) -> EditPlan:
    file_edit = plan_file_edit(repository.root, rel, [SetValue(("model",), f"{model}@{new}")])
    _changed_text_doc(rel, file_edit.after, Kind.DEPLOYMENT)
    old_spec, new_spec = versions.get(old), versions[new]
    artifact: tuple[Change, ...] = ()
    metrics: tuple[Change, ...] = ()
    if old_spec is not None:
        artifact = (
            Change("uri", old_spec.artifact.uri, new_spec.artifact.uri),
            Change("sha256", old_spec.artifact.sha256, new_spec.artifact.sha256),
        )
        metrics = tuple(
            Change(n, old_spec.metrics.get(n), new_spec.metrics.get(n))
            for n in sorted(set(old_spec.metrics) | set(new_spec.metrics))
        )
    verb = "Promote" if kind is EditKind.PROMOTE else "Roll back"
    return EditPlan(
        kind=kind,
        model=ModelName(model),
        old_version=old,
        new_version=new,
        files=(file_edit,),
        commit_paths=(rel,),
        title=f"{verb} {model} in {environment} to {new}",
        default_branch=f"gitops-ml/{kind.value}-{model}-{environment}",
        environment=environment,
        notes=notes,
        artifact=artifact,
        metrics=metrics,
    )


@dataclass(frozen=True)
class PromoteRequest:
    repo: Repository
    model: str
    to: str
    version: str | None = None
    from_env: str | None = None
    canary: int | None = None  # a weight: add the canary (or move its weight) instead of moving the pin


def plan_promote(request: PromoteRequest) -> EditPlan:
    """Move the pin forward; with `canary`, add or move a canary; with a canary declared, promote it."""
    repository = request.repo
    if request.version and request.from_env:
        raise UsageError("give --version or --from, not both")
    if request.canary is not None:
        if request.from_env:
            raise UsageError("--canary takes the version from --version (default: the newest), not --from")
        return steps.plan_canary(repository, request.model, request.to, request.canary, request.version)
    running = steps.planned_canary(repository, request.model, request.to)
    if running is not None:
        wanted = request.version[1:] if request.version and request.version.startswith("v") else request.version
        if request.from_env or (wanted and wanted != str(running.canary.pin.version if running.canary else "")):
            raise EditError(
                f"{request.to} runs a canary of {running.canary.pin if running.canary else ''}: promote that one, or roll it back first",
                hint=f"`gitops-ml promote {request.model} --env {request.to}` promotes it; `gitops-ml rollback {request.model} --env {request.to}` removes it",
            )
        return steps.plan_canary_promotion(repository, request.model, request.to)
    _, spec = _read_spec(repository, request.model)
    rel, pin = _deployment(repository, request.model, request.to)
    versions = _registered(repository, spec)
    if request.version:
        text = request.version[1:] if request.version.startswith("v") else request.version
        if not Version.is_valid(text):
            raise UsageError(f"--version {request.version!r} is not a semantic version")
        target = Version.parse(text)
    elif request.from_env:
        if request.from_env == request.to:
            raise UsageError("--from and --to name the same environment")
        _, source = _deployment(repository, request.model, request.from_env)
        target = _running(source, spec)
    else:
        target = spec.version
    _require(versions, request.model, target)
    current = _running(pin, spec)
    if pin.version == target:
        raise EditError(f"{request.to} already runs {request.model}@{target}")
    if target < current:
        raise EditError(
            f"{target} is older than the {current} that {request.to} runs",
            hint=f"moving back is `gitops-ml rollback {request.model} --env {request.to} --to {target}`",
        )
    notes = () if pin.version else (f"{request.to} tracked the newest version; it is now pinned",)
    return _pin_plan(repository, EditKind.PROMOTE, request.model, request.to, rel, current, target, versions, notes)


@dataclass(frozen=True)
class RollbackRequest:
    repo: Repository
    model: str
    env: str
    to: str | None = None


def plan_rollback(request: RollbackRequest) -> EditPlan:
    """Move the pin back; with a canary declared, remove the canary instead."""
    repository = request.repo
    if steps.planned_canary(repository, request.model, request.env) is not None:
        if request.to:
            raise EditError(
                f"{request.env} runs a canary: roll it back first (without --to), then move the pin",
                hint=f"`gitops-ml rollback {request.model} --env {request.env}` removes the canary",
            )
        return steps.plan_canary_rollback(repository, request.model, request.env)
    _, spec = _read_spec(repository, request.model)
    rel, pin = _deployment(repository, request.model, request.env)
    versions = _registered(repository, spec)
    current = _running(pin, spec)
    if request.to:
        text = request.to[1:] if request.to.startswith("v") else request.to
        if not Version.is_valid(text):
            raise UsageError(f"--to {request.to!r} is not a semantic version")
        target = Version.parse(text)
        _require(versions, request.model, target)
        if target >= current:
            raise EditError(
                f"{target} is not older than the {current} that {request.env} runs",
                hint=f"moving forward is `gitops-ml promote {request.model} --to {request.env} --version {target}`",
            )
    else:
        target = _previous(repository, request.model, request.env, current, versions)
    return _pin_plan(repository, EditKind.ROLLBACK, request.model, request.env, rel, current, target, versions)


def _previous(
    repository: Repository, model: str, environment: str, current: Version, versions: Mapping[Version, ModelSpec]
) -> Version:
    """The version the environment ran before `current` (from the deployment file's history), or
    else the newest registered version older than current."""
    found = _history(repository, model)
    ran = sorted(
        (
            run
            for record in found.versions
            for run in record.runs
            if run.environment == environment and run.version < current
        ),
        key=lambda run: (run.since.date, run.since.sha),
    )
    if ran:
        return ran[-1].version
    older = [v for v in versions if v < current]
    if not older:
        raise EditError(f"{environment} runs {model}@{current} and no older version exists to roll back to")
    return max(older)
