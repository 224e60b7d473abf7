"""Resolve `model@version` to the files of that version: the working tree or a commit of history.

A version is the content of models/<model>/ at the commit that set its version in model.yaml
(the commit CI tags `<model>@v<version>`). Tags are used when present; otherwise one `git log`.
Shared by render, build and the registry so that the same pin always means the same files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gitops_ml.adapters import git as gitx
from gitops_ml.errors import GitopsMlError, RegistryError
from gitops_ml.imageref import content_digest, image_ref
from gitops_ml.loading import RepositoryTree, load_tree
from gitops_ml.registry import reading
from gitops_ml.registry.state import ModelHistory
from gitops_ml.sources import FileSource, WorkTree
from gitops_ml.types import (
    DEPLOYMENTS_DIR,
    MODELS_DIR,
    Finding,
    ImageRef,
    ModelName,
    RepositorySpec,
    Version,
)
from gitops_ml.validation import ModelEntry, Specs, older_pins, validate_tree


@dataclass(frozen=True)
class ModelVersion:
    """One version of one model and the tree its files are read from."""

    entry: ModelEntry
    source: FileSource
    commit: str | None  # None: the working tree

    @property
    def name(self) -> ModelName:
        return self.entry.spec.name

    @property
    def version(self) -> Version:
        return self.entry.spec.version

    def files(self) -> dict[str, bytes]:
        """Files of the model directory, keyed by path relative to it."""
        prefix = self.entry.dir + "/"
        return {p[len(prefix):]: self.source.read(p) for p in self.source.walk_files(self.entry.dir)}

    def digest(self, repo: RepositorySpec) -> str:
        manifest = self.entry.manifest
        return content_digest(
            self.files(),
            artifact_sha256=self.entry.spec.artifact.sha256,
            base_image=manifest.base_image or repo.base_image,
            python=manifest.python,
        )

    def image_ref(self, repo: RepositorySpec) -> ImageRef:
        return image_ref(repo.registry, self.name, self.version, self.digest(repo))


class _WithoutDeployments:
    """A FileSource that hides deployments/: validating one model of an old commit must not
    parse and validate every deployment file of that commit (thousands in a large repository)."""

    def __init__(self, source: FileSource) -> None:
        self._source = source
        self.label = source.label

    def read(self, rel: str) -> bytes:
        return self._source.read(rel)

    def is_file(self, rel: str) -> bool:
        return self._source.is_file(rel)

    def is_dir(self, rel: str) -> bool:
        return rel != DEPLOYMENTS_DIR and self._source.is_dir(rel)

    def listdir(self, rel: str) -> list[str]:
        return [] if rel == DEPLOYMENTS_DIR else self._source.listdir(rel)

    def walk_files(self, rel: str) -> list[str]:
        return self._source.walk_files(rel)

    def links_outside(self, rel: str) -> list[tuple[str, str]]:
        return self._source.links_outside(rel)


def entry_at(source: FileSource, model: ModelName) -> ModelEntry | None:
    """The validated entry of model in a tree of history; None when its files do not validate."""
    source = _WithoutDeployments(source)
    tree = load_tree(source, only_models={model})
    report = validate_tree(tree)
    if report.specs is not None:
        return report.specs.models.get(model)
    # the rest of an old tree may not validate any more; the model itself must
    from gitops_ml.validation import _check_models

    out: list[Finding] = []
    return _check_models(tree, source, out).get(model)


def resolve_model_version(root: Path, specs: Specs, model: ModelName, version: Version | None, *, worktree: WorkTree | None = None) -> ModelVersion:
    """The files of model@version; version None means the working tree's newest.

    A version other than the working tree's is found by its `<model>@v<version>` tag when the tag
    exists and its commit carries that version, otherwise by one `git log` over model.yaml: the
    commit of first-parent history that set the version (the commit CI tags).
    """
    current = specs.models.get(model)
    if current is None:
        raise RegistryError(f"unknown model {model!r}", hint=f"models are the directories under {MODELS_DIR}/")
    if version is None or current.spec.version == version:
        # one WorkTree for many models: it asks git once which files are ignored
        return ModelVersion(current, worktree or WorkTree(root), None)
    reg = reading.open_registry(root)
    sha = reading.tagged_commit(reg, model, version)
    if sha is None:
        record = reading.model_history(reg, model).get(version)
        sha = record.commit.sha if record is not None else None
    if sha is None:
        hint = gitx.SHALLOW_HINT if gitx.is_shallow(reg.repo) else f"list versions with `gitops-ml history {model}`"
        raise RegistryError(f"version {version} of model {model!r} does not exist in git history", hint=hint)
    return version_at(reg, model, version, sha)


def missing_pins(root: Path, tree: RepositoryTree, specs: Specs) -> list[Finding]:
    """Deployments pinned to a version no commit registered, located at their `model:` line.

    Only pins other than the working tree's version cost anything (a tag lookup, else one `git log`
    per model); outside a git repository, or before the first commit, there is no history to ask.
    """
    pinned = older_pins(specs)
    if not pinned:
        return []
    try:
        reg = reading.open_registry(root)
    except GitopsMlError:
        return []
    documents = {d.document.path: d.document for d in tree.deployments}
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


def version_at(reg: reading.RegistryRepo, model: ModelName, version: Version, sha: str) -> ModelVersion:
    """model@version as the commit that registered it has it; its files must validate there."""
    source = gitx.CommitTree(reg.repo, reg.repo.commit(sha), reg.prefix)
    entry = entry_at(source, model)
    if entry is None or entry.spec.version != version:
        raise RegistryError(
            f"{model}@{version} cannot be read at commit {sha[:12]}: its files do not validate",
            hint=f"check them with `git show {sha[:12]}:{reg.full(f'{MODELS_DIR}/{model}/model.yaml')}`",
        )
    return ModelVersion(entry, source, sha)
