"""Resolve `model@version` to the files of that version: the working tree or a commit of history.

A version is the content of models/<model>/ at the newest commit where model.yaml carries it
(the commit CI tags `<model>@v<version>`). Tags are used when present; otherwise history is walked.
Shared by render, build and the registry so that the same pin always means the same files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gitops_ml.adapters import git as gitx
from gitops_ml.errors import RegistryError
from gitops_ml.imageref import content_digest, image_ref
from gitops_ml.loading import load_tree
from gitops_ml.sources import FileSource, WorkTree
from gitops_ml.types import MODELS_DIR, ImageRef, ModelName, RepositorySpec, Version
from gitops_ml.validation import ModelEntry, Specs, validate_tree

TAG_FORMAT = "{model}@v{version}"


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


def _entry_at(source: FileSource, model: ModelName) -> ModelEntry | None:
    tree = load_tree(source, only_models={model})
    report = validate_tree(tree)
    if report.specs is not None:
        return report.specs.models.get(model)
    # the rest of an old tree may not validate any more; the model itself must
    from gitops_ml.validation import _check_models  # noqa: PLC0415 - same stage, private helper

    out: list = []
    return _check_models(tree, source, out).get(model)


def resolve_model_version(root: Path, specs: Specs, model: ModelName, version: Version | None) -> ModelVersion:
    """The files of model@version; version None means the working tree's newest."""
    current = specs.models.get(model)
    if current is None:
        raise RegistryError(f"unknown model {model!r}", hint=f"models are the directories under {MODELS_DIR}/")
    if version is None or current.spec.version == version:
        return ModelVersion(current, WorkTree(root), None)
    repo = gitx.open_repo(root)
    prefix = gitx.repo_prefix(repo, root)
    tag = TAG_FORMAT.format(model=model, version=version)
    candidates: list[str] = []
    try:
        candidates.append(repo.git.rev_parse(f"refs/tags/{tag}^{{commit}}"))
    except Exception:  # noqa: BLE001 - no such tag: fall back to history
        pass
    model_dir = f"{prefix}/{MODELS_DIR}/{model}" if prefix else f"{MODELS_DIR}/{model}"
    if not candidates:
        try:
            candidates = repo.git.log("--format=%H", "HEAD", "--", model_dir).split()
        except Exception:  # noqa: BLE001
            candidates = []
    for sha in candidates:
        source = gitx.CommitTree(repo, repo.commit(sha), prefix)
        raw = None
        try:
            raw = source.read(f"{MODELS_DIR}/{model}/model.yaml")
        except FileNotFoundError:
            continue
        if f"{version}".encode() not in raw:
            continue
        entry = _entry_at(source, model)
        if entry is not None and entry.spec.version == version:
            return ModelVersion(entry, source, sha)
    hint = gitx.SHALLOW_HINT if gitx.is_shallow(repo) else f"list versions with `gitops-ml history {model}`"
    raise RegistryError(f"version {version} of model {model!r} does not exist in git history", hint=hint)
