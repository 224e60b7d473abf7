"""Build plans: what the user asked for (`BuildOptions`), one `ImagePlan` per model version with its
content-addressed reference and OCI labels, and what happened to it (`ImageResult`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from gitops_ml import __version__
from gitops_ml.registry.versions import ModelVersion, resolve_model_version
from gitops_ml.repo.handle import Repository
from gitops_ml.types import ImageRef, ModelName, RepositorySpec, Version
from gitops_ml.validate.specs import Specs

if TYPE_CHECKING:
    pass

Progress = Callable[[str], None]


@dataclass(frozen=True)
class BuildOptions:
    """What the user asked for, beyond the repository: overrides and where contexts go."""

    models: tuple[ModelName, ...] = ()
    version: Version | None = None
    registry: str = ""
    base_image: str = ""
    push: bool = False
    context_only: Path | None = None
    cache: Path | None = None
    rebuild: bool = False  # ignore an existing image with the same reference (runtime development)
    no_cache: bool = False  # and the engine's layer cache (benchmarks, suspect caches)
    allow_dirty: bool = False  # push a model whose files differ from HEAD (labelled <sha>-dirty)


@dataclass(frozen=True)
class ImagePlan:
    """One image to build: a model version, its content-addressed reference and what goes into it."""

    version: ModelVersion
    ref: ImageRef
    base_image: str
    python: str
    labels: dict[str, str]
    dirty: tuple[str, ...] = ()  # repository paths of the model that differ from HEAD (or are untracked)
    untracked: tuple[str, ...] = ()  # those of `dirty` git does not track (and does not ignore)
    content_digest: str = ""  # the model version's content digest (the tag's hex is its start)
    created: int = 315532800  # the image's creation time: SOURCE_DATE_EPOCH or the revision's commit time (1980 without git)

    @property
    def model(self) -> ModelName:
        return self.version.name

    @property
    def model_dir(self) -> str:
        return self.version.entry.dir


@dataclass
class ImageResult:
    """What happened to one image; `status` is built, exists (in the registry or locally) or context."""

    model: str
    version: str
    ref: str
    status: str
    pushed: bool = False
    digest: str = ""
    image_id: str = ""
    bytes_pushed: int = 0
    layers_pushed: int = 0
    seconds: float = 0.0
    context: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    dirty: list[str] = field(default_factory=list)
    referrers: list[dict[str, str]] = field(default_factory=list)  # SBOM and provenance pushed next to the image


def _override_base(version: ModelVersion, base_image: str) -> ModelVersion:
    entry = version.entry
    manifest = dataclasses.replace(entry.manifest, base_image=base_image)
    return dataclasses.replace(version, entry=dataclasses.replace(entry, manifest=manifest))


def effective_repository(repo: RepositorySpec, options: BuildOptions) -> RepositorySpec:
    """The repository settings with --registry and --base-image applied (they change image refs)."""
    changes: dict[str, str] = {}
    if options.registry:
        changes["registry"] = options.registry.rstrip("/")
    if options.base_image:
        changes["base_image"] = options.base_image
    return dataclasses.replace(repo, **changes) if changes else repo  # type: ignore[arg-type]


def plan_images(repository: Repository, specs: Specs, options: BuildOptions, *, revision: str = "") -> list[ImagePlan]:
    """One plan per requested model (all models when none is named), at the requested version."""
    repo = effective_repository(specs.repository, options)
    names = options.models or tuple(sorted(specs.models))
    plans = []
    for name in names:
        mv = resolve_model_version(repository, specs, name, options.version)
        if options.base_image:
            mv = _override_base(mv, options.base_image)
        manifest, spec = mv.entry.manifest, mv.entry.spec
        ref = mv.image_ref(repo)
        base = manifest.base_image or repo.base_image
        labels = {
            "org.opencontainers.image.source": repo.source_url,
            "org.opencontainers.image.revision": mv.commit or revision,
            "org.opencontainers.image.version": str(spec.version),
            "org.opencontainers.image.title": str(spec.name),
            "org.opencontainers.image.description": spec.description,
            "org.opencontainers.image.base.name": base,
            "dev.gitops-ml.model": str(spec.name),
            "dev.gitops-ml.version": str(spec.version),
            "dev.gitops-ml.artifact.uri": spec.artifact.uri,
            "dev.gitops-ml.artifact.sha256": spec.artifact.sha256,
            "dev.gitops-ml.runtime": __version__,
        }
        plans.append(ImagePlan(mv, ref, base, manifest.python, {k: v for k, v in labels.items() if v}, content_digest=mv.digest(repo)))
    return plans
