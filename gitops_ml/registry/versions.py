"""Resolve `model@version` to the files of that version: the working tree or a commit of history.

A version is the content of models/<model>/ at the commit that set its version in model.yaml
(the commit CI tags `<model>@v<version>`). Tags are used when present; otherwise one `git log`.
Shared by render, build and the registry so that the same pin always means the same files.
"""

from __future__ import annotations

from dataclasses import dataclass

from gitops_ml.adapters import git as gitx
from gitops_ml.errors import RegistryError
from gitops_ml.history import reading
from gitops_ml.registry.imageref import content_digest, image_ref
from gitops_ml.repo.handle import Repository
from gitops_ml.repo.loading import load_tree
from gitops_ml.repo.sources import FileSource, WithoutDeployments
from gitops_ml.types import (
    MODELS_DIR,
    Finding,
    ImageRef,
    ModelName,
    RepositorySpec,
    Version,
)
from gitops_ml.validate.rules import validate_tree
from gitops_ml.validate.specs import ModelEntry, Specs


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


def entry_at(source: FileSource, model: ModelName) -> ModelEntry | None:
    """The validated entry of model in a tree of history; None when its files do not validate."""
    source = WithoutDeployments(source)
    tree = load_tree(source, only_models={model})
    report = validate_tree(tree)
    if report.specs is not None:
        return report.specs.models.get(model)
    # the rest of an old tree may not validate any more; the model itself must
    from gitops_ml.validate.rules import check_models

    out: list[Finding] = []
    return check_models(tree, source, out).get(model)


def resolve_model_version(repository: Repository, specs: Specs, model: ModelName, version: Version | None) -> ModelVersion:
    """The files of model@version; version None means the working tree's newest.

    A version other than the working tree's is found by its `<model>@v<version>` tag when the tag
    exists and its commit carries that version, otherwise by one `git log` over model.yaml: the
    commit of first-parent history that set the version (the commit CI tags).
    """
    current = specs.models.get(model)
    if current is None:
        raise RegistryError(f"unknown model {model!r}", hint=f"models are the directories under {MODELS_DIR}/")
    if version is None or current.spec.version == version:
        # the handle's one WorkTree for every model: it asks git once which files are ignored
        return ModelVersion(current, repository.worktree, None)
    reg = reading.open_registry(repository)
    sha = reading.tagged_commit(reg, model, version)
    if sha is None:
        record = reading.model_history(reg, model).get(version)
        sha = record.commit.sha if record is not None else None
    if sha is None:
        hint = gitx.SHALLOW_HINT if gitx.is_shallow(reg.repo) else f"list versions with `gitops-ml history {model}`"
        raise RegistryError(f"version {version} of model {model!r} does not exist in git history", hint=hint)
    return version_at(repository, reg, model, version, sha)


def version_at(repository: Repository, reg: reading.RegistryRepo, model: ModelName, version: Version, sha: str) -> ModelVersion:
    """model@version as the commit that registered it has it; its files must validate there."""
    source = repository.at(sha)
    entry = entry_at(source, model)
    if entry is None or entry.spec.version != version:
        raise RegistryError(
            f"{model}@{version} cannot be read at commit {sha[:12]}: its files do not validate",
            hint=f"check them with `git show {sha[:12]}:{reg.full(f'{MODELS_DIR}/{model}/model.yaml')}`",
        )
    return ModelVersion(entry, source, sha)
