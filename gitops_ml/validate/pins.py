"""Pins checked against git history: a deployment pinned to a version must name one that some commit
registered (a tag, or the commit that set it in model.yaml). Never prints.
"""

from __future__ import annotations

from gitops_ml.adapters import git as gitx
from gitops_ml.errors import GitopsMlError
from gitops_ml.history import reading
from gitops_ml.history.fold import ModelHistory
from gitops_ml.repo.handle import Repository
from gitops_ml.types import Finding, ModelName
from gitops_ml.validate.rules import older_pins
from gitops_ml.validate.specs import Specs


def missing_pins(repository: Repository, specs: Specs) -> list[Finding]:
    """Deployments pinned to a version no commit registered, located at their `model:` line.

    Only pins other than the working tree's version cost anything (a tag lookup, else one `git log`
    per model); outside a git repository, or before the first commit, there is no history to ask.
    """
    pinned = older_pins(specs)
    if not pinned:
        return []
    try:
        reg = reading.open_registry(repository)
    except GitopsMlError:
        return []
    documents = {d.document.path: d.document for d in repository.tree().deployments}
    histories: dict[ModelName, ModelHistory] = {}
    out = []
    for dep in pinned:
        version = dep.pin.version
        assert version is not None
        if reading.tagged_commit(reg, dep.model, version) is not None:
            continue
        if dep.model not in histories:
            histories[dep.model] = reading.model_history(reg, dep.model)
        if histories[dep.model].get(version) is not None:
            continue
        hint = gitx.SHALLOW_HINT if gitx.is_shallow(reg.repo) else f"list versions with `gitops-ml history {dep.model}`"
        path = specs.deployment_files[(dep.environment, dep.model)]
        out.append(Finding(documents[path].locate(["model"]), f"version {version} of model {dep.model!r} does not exist in git history", hint=hint))
    return out
