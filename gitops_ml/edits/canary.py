"""Promotion in steps, planned as pull requests on a deployment file's `rollout:`: add a canary at a
weight, move the weight, promote the canary (`model:` becomes the candidate, the canary goes), or
roll it back (the canary goes). Edits keep every other byte of the file (repo.editing); the result must
pass the schema and the rollout rules before anything is written. Nothing here writes or prints.
"""

from __future__ import annotations

from typing import Any, Mapping

from gitops_ml.edits.plans import (
    Change,
    EditKind,
    EditPlan,
    _changed_text_doc,
    _deployment,
    _parse,
    _read_spec,
    _registered,
    _require,
)
from gitops_ml.errors import EditError, UsageError
from gitops_ml.repo.editing import DeleteKey, Edit, SetValue, plan_file_edit
from gitops_ml.repo.handle import Repository
from gitops_ml.types import REPOSITORY_FILE, DeploymentSpec, Kind, ModelName, ModelSpec, RolloutSpec, Version
from gitops_ml.validate.rollout import deployment_findings


def _rollout(repository: Repository, rel: str) -> tuple[dict[str, Any], RolloutSpec]:
    doc = _parse(rel, (repository.root / rel).read_bytes())
    data = doc.data.get("rollout") or {}
    return dict(data), RolloutSpec.from_doc(data) if data else RolloutSpec()


def _without_canary(rollout: Mapping[str, Any], spec: RolloutSpec) -> tuple[list[Edit], list[str]]:
    """Edits that remove the canary, its analysis, and a shadow of the same version (the candidate is
    decided); the whole `rollout:` when nothing else is left in it. Also notes saying so."""
    assert spec.canary is not None
    gone = ["canary"]
    if "analysis" in rollout:
        gone.append("analysis")
    notes = []
    if spec.shadow is not None and spec.shadow.pin == spec.canary.pin:
        gone.append("shadow")
        notes.append(f"the shadow of {spec.shadow.pin} is removed with the canary")
    if set(rollout) <= set(gone):
        return [DeleteKey(("rollout",))], notes
    return [DeleteKey(("rollout", key)) for key in gone], notes


def _check_rules(repository: Repository, rel: str, text: str, environment: str, newest: Version) -> None:
    """The edited file must pass the rollout rules (an exposure that can split traffic, ...)."""
    _changed_text_doc(rel, text, Kind.DEPLOYMENT)
    doc = _parse(rel, text.encode("utf-8"))
    spec = DeploymentSpec.from_doc(environment, doc.data)
    config = repository.config
    env = config.environments.get(spec.environment) if config is not None else None
    findings = deployment_findings(doc, spec, env, newest)
    if findings:
        first = findings[0]
        raise EditError(f"the edit would make {rel} invalid: {first.message}", location=first.location,
                        hint=first.hint or f"fix the deployment file or {REPOSITORY_FILE} first")


def _plan(repository: Repository, kind: EditKind, model: str, environment: str, rel: str, edits: list[Edit], old: Version, new: Version,
          versions: Mapping[Version, ModelSpec], title: str, branch: str, notes: list[str], newest: Version) -> EditPlan:
    file_edit = plan_file_edit(repository.root, rel, edits)
    _check_rules(repository, rel, file_edit.after, environment, newest)
    old_spec, new_spec = versions.get(old), versions.get(new)
    metrics: tuple[Change, ...] = ()
    if old_spec is not None and new_spec is not None:
        metrics = tuple(Change(n, old_spec.metrics.get(n), new_spec.metrics.get(n)) for n in sorted(set(old_spec.metrics) | set(new_spec.metrics)))
    return EditPlan(
        kind=kind,
        model=ModelName(model),
        old_version=old,
        new_version=new,
        files=(file_edit,),
        commit_paths=(rel,),
        title=title,
        default_branch=branch,
        environment=environment,
        notes=tuple(notes),
        metrics=metrics,
    )


def plan_canary(repository: Repository, model: str, environment: str, weight: int, version: str | None) -> EditPlan:
    """Add a canary (of `version`, else the newest version) at `weight` percent, or move its weight."""
    if not 0 <= weight <= 100:
        raise UsageError(f"--canary {weight}: a weight is a percentage, 0 to 100")
    _, spec = _read_spec(repository, model)
    rel, pin = _deployment(repository, model, environment)
    rollout, current = _rollout(repository, rel)
    versions = _registered(repository, spec)
    stable = pin.version or spec.version
    if version:
        text = version[1:] if version.startswith("v") else version
        if not Version.is_valid(text):
            raise UsageError(f"--version {version!r} is not a semantic version")
        target = Version.parse(text)
    else:
        target = current.canary.pin.version if current.canary and current.canary.pin.version else spec.version
    _require(versions, model, target)
    if target == stable:
        raise EditError(f"{environment} already runs {model}@{target}: a canary is another version",
                        hint=f"bump the model first (`gitops-ml bump {model}`), or name another version with --version")
    branch = f"gitops-ml/canary-{model}-{environment}"
    notes = [f"`gitops-ml canary status {model} --env {environment}` shows the candidate beside the stable version"]
    if current.canary is not None and current.canary.pin.version == target:
        if current.canary.weight == weight:
            raise EditError(f"the canary of {model}@{target} in {environment} already answers {weight} %")
        edits: list[Edit] = [SetValue(("rollout", "canary", "weight"), weight)]
        title = f"Canary {model}@{target} in {environment} from {current.canary.weight} % to {weight} %"
    else:
        if current.canary is not None:
            notes.append(f"replaces the canary of {current.canary.pin} at {current.canary.weight} %")
        edits = [SetValue(("rollout", "canary"), {"model": f"{model}@{target}", "weight": weight})] if "canary" not in rollout else [
            SetValue(("rollout", "canary", "model"), f"{model}@{target}"),
            SetValue(("rollout", "canary", "weight"), weight),
        ]
        title = f"Canary {model}@{target} in {environment} at {weight} %"
    if pin.version is None:
        # a canary beside a stable version that tracks the newest would change with the next bump
        edits.insert(0, SetValue(("model",), f"{model}@{stable}"))
        notes.append(f"{environment} tracked the newest version; its stable version is now pinned to {stable}")
    return _plan(repository, EditKind.PROMOTE, model, environment, rel, edits, stable, target, versions, title, branch, notes, spec.version)


def planned_canary(repository: Repository, model: str, environment: str) -> RolloutSpec | None:
    """The deployment file's rollout when it declares a canary; None otherwise."""
    rel, _ = _deployment(repository, model, environment)
    _, current = _rollout(repository, rel)
    return current if current.canary is not None else None


def plan_canary_promotion(repository: Repository, model: str, environment: str) -> EditPlan:
    """`model:` becomes the canary's version and the canary goes."""
    _, spec = _read_spec(repository, model)
    rel, pin = _deployment(repository, model, environment)
    rollout, current = _rollout(repository, rel)
    assert current.canary is not None and current.canary.pin.version is not None
    versions = _registered(repository, spec)
    target = current.canary.pin.version
    _require(versions, model, target)
    stable = pin.version or spec.version
    removal, notes = _without_canary(rollout, current)
    notes.insert(0, f"the canary of {target} answered {current.canary.weight} % of {environment}'s requests; it now answers all of them")
    edits: list[Edit] = [SetValue(("model",), f"{model}@{target}"), *removal]
    return _plan(repository, EditKind.PROMOTE, model, environment, rel, edits, stable, target, versions,
                 f"Promote {model} in {environment} to {target} (the canary)", f"gitops-ml/promote-{model}-{environment}", notes, spec.version)


def plan_canary_rollback(repository: Repository, model: str, environment: str) -> EditPlan:
    """The canary goes; the stable version answers every request again."""
    _, spec = _read_spec(repository, model)
    rel, pin = _deployment(repository, model, environment)
    rollout, current = _rollout(repository, rel)
    assert current.canary is not None and current.canary.pin.version is not None
    versions = _registered(repository, spec)
    stable = pin.version or spec.version
    removal, notes = _without_canary(rollout, current)
    notes.insert(0, f"the canary of {current.canary.pin} at {current.canary.weight} % is removed; {stable} answers every request again")
    return _plan(repository, EditKind.ROLLBACK, model, environment, rel, removal, current.canary.pin.version, stable, versions,
                 f"Roll back the canary of {model}@{current.canary.pin.version} in {environment}", f"gitops-ml/rollback-{model}-{environment}", notes, spec.version)
