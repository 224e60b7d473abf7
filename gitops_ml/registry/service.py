"""Registry use cases (models, history, show, compare, tag) over git; each returns a result object.

Everything is answered from one commit (HEAD unless asked otherwise) and its first-parent history,
never from the working tree, so two clones at the same commit give the same answers. Nothing here
prints; `cli/` turns the results into text or JSON.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from gitops_ml.adapters import git as gitx
from gitops_ml.errors import GitopsMlError, RegistryError, UsageError
from gitops_ml.history.fold import ModelHistory, Run, VersionRecord
from gitops_ml.history.reading import (
    RegistryRepo,
    all_model_histories,
    carries_at,
    model_history,
    model_tags,
    models_at,
    open_registry,
    other_registrations,
    read_at,
    read_model_spec,
    read_pin,
    registration_tags,
    shares_git_repository,
)
from gitops_ml.history.tags import VersionTag
from gitops_ml.repo.handle import Repository
from gitops_ml.repo.loading import parse_yaml
from gitops_ml.types import (
    DEPLOYMENTS_DIR,
    MODELS_DIR,
    REPOSITORY_FILE,
    EnvironmentName,
    ImageRef,
    ModelName,
    ModelPin,
    RepositorySpec,
    Version,
)
from gitops_ml.validate.compat import schema_breaks

if TYPE_CHECKING:
    from gitops_ml.registry.versions import ModelVersion

# --- models ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnvironmentState:
    """What one environment runs of a model: the pin as written and the version it resolves to."""

    environment: EnvironmentName
    pin: ModelPin
    version: Version | None

    @property
    def tracking(self) -> bool:
        return self.pin.version is None


@dataclass(frozen=True)
class ModelSummary:
    model: ModelName
    newest: Version | None  # None when model.yaml cannot be read at this commit
    tagged: bool
    environments: tuple[EnvironmentState, ...]
    tagged_versions: int = 0


@dataclass(frozen=True)
class ModelsResult:
    commit: str
    environments: tuple[EnvironmentName, ...]
    models: tuple[ModelSummary, ...]


def list_models(repository: Repository, rev: str = "HEAD") -> ModelsResult:
    """Each model at rev with its newest version and the version each environment runs.

    Reads only the tree of rev and the tag list, so its cost grows with the number of models, not
    with the length of history.
    """
    reg = open_registry(repository, rev)
    files = gitx.list_tree(reg.repo, reg.rev, [reg.full(MODELS_DIR), reg.full(DEPLOYMENTS_DIR)])
    rels = [reg.rel(p) for p in files]
    model_files = [r for r in rels if r.startswith(f"{MODELS_DIR}/") and r.count("/") == 2 and r.endswith("/model.yaml")]
    deployment_files = [r for r in rels if r.startswith(f"{DEPLOYMENTS_DIR}/") and r.count("/") == 2 and r.endswith((".yaml", ".yml"))]
    raw = gitx.read_objects(reg.repo, (files[reg.full(r)] for r in model_files + deployment_files))
    newest: dict[ModelName, Version | None] = {}
    for rel in model_files:
        spec = read_model_spec(rel, raw.get(files[reg.full(rel)], b""))
        newest[ModelName(rel.split("/")[1])] = spec.version if spec else None
    deployed: dict[ModelName, list[EnvironmentState]] = {}
    environments = set()
    for rel in sorted(deployment_files):
        pin = read_pin(rel, raw.get(files[reg.full(rel)], b""))
        if pin is None or pin.model not in newest:
            continue
        env = EnvironmentName(rel.split("/")[1])
        environments.add(env)
        deployed.setdefault(pin.model, []).append(EnvironmentState(env, pin, pin.version or newest[pin.model]))
    named = {model: found for model, found in model_tags(reg).items() if model in newest}
    # a tag counts when its commit registered the version at this repository's path: checked for
    # the newest versions always, and for every tag only when another gitops-ml repository shares
    # this git repository (a path lookup per tag costs a second on ten thousand tags)
    newest_tags = registration_tags(reg, {m: {v: found[v]} for m, found in named.items() if (v := newest[m]) is not None and v in found})
    counted = registration_tags(reg, named) if shares_git_repository(reg) else named
    summaries = tuple(
        ModelSummary(
            model,
            version,
            version is not None and version in newest_tags.get(model, {}),
            tuple(deployed.get(model, [])),
            len(counted.get(model, {})),
        )
        for model, version in sorted(newest.items())
    )
    return ModelsResult(reg.rev, tuple(sorted(environments)), summaries)


# --- history -------------------------------------------------------------------------------------


def _unknown_model(reg: RegistryRepo, model: str) -> RegistryError:
    known = models_at(reg)
    close = difflib.get_close_matches(model, known, n=1)
    hint = f"did you mean {close[0]!r}?" if close else (f"known models: {', '.join(known)}" if known else f"no models under {MODELS_DIR}/ at {reg.rev_name}")
    if gitx.is_shallow(reg.repo):
        hint += f"; {gitx.SHALLOW_HINT}"
    return RegistryError(f"unknown model {model!r}", hint=hint)


def _history(reg: RegistryRepo, model: str) -> ModelHistory:
    found = model_history(reg, ModelName(model))
    if not found.versions:
        raise _unknown_model(reg, model)
    return replace(found, complete=not gitx.is_shallow(reg.repo))


def history(repository: Repository, model: str, rev: str = "HEAD") -> ModelHistory:
    """Every version of model with its commit, model.yaml and where it ran, oldest first."""
    return _history(open_registry(repository, rev), model)


# --- show ----------------------------------------------------------------------------------------


def parse_model_version(text: str) -> tuple[ModelName, Version]:
    """`iris@1.2.0` (or `iris@v1.2.0`, the tag spelling) -> (model, version); UsageError otherwise."""
    name, sep, version = text.partition("@")
    version = version.removeprefix("v")
    if not sep or not name or not Version.is_valid(version):
        raise UsageError(f"expected MODEL@VERSION such as iris@1.2.0, got {text!r}")
    return ModelName(name), Version.parse(version)


@dataclass(frozen=True)
class FileInfo:
    path: str  # relative to the model directory
    size: int


@dataclass(frozen=True)
class ShowResult:
    record: VersionRecord
    model_version: ModelVersion
    files: tuple[FileInfo, ...]
    image_ref: ImageRef | None
    image_problem: str = ""
    running: tuple[Run, ...] = ()  # environments running this version now
    referrers: "ImageReferrers | None" = None  # asked of the image's registry only on request


@dataclass(frozen=True)
class Referrer:
    """An artifact pushed next to an image (its SBOM, its provenance): its type and where it is."""

    artifact_type: str
    ref: str  # repository@digest


@dataclass(frozen=True)
class ImageReferrers:
    """What the image's registry says about a reference: its digest and what refers to it."""

    digest: str = ""
    via: str = ""  # "api" (OCI 1.1 referrers API) or "tag-schema"
    items: tuple[Referrer, ...] = ()
    problem: str = ""  # why the registry could not answer (not pushed, unreachable)


def image_referrers(ref: str) -> ImageReferrers:
    """The SBOM and provenance the registry holds for an image reference; a problem instead of an error,
    since `show` answers from git first and the registry is a second opinion."""
    from gitops_ml.adapters import oci  # noqa: PLC0415 - imports ORAS and requests

    host, repository, reference = oci.split_ref(ref)
    try:
        registry = oci.Registry(host)
        found = registry.manifest(repository, reference)
        if found is None:
            return ImageReferrers(problem=f"{ref} is not in the registry (not pushed yet?)")
        digest = found[1].digest
        listed = registry.referrers(repository, digest)
    except GitopsMlError as exc:
        return ImageReferrers(problem=exc.message)
    items = tuple(Referrer(d.artifact_type, f"{host}/{repository}@{d.digest}") for d in listed.items)
    return ImageReferrers(digest, listed.via, items)


def _unknown_version(reg: RegistryRepo, found: ModelHistory, version: Version) -> RegistryError:
    known = [str(r.version) for r in found.versions]
    close = difflib.get_close_matches(str(version), known, n=1, cutoff=0.5)
    hint = (f"did you mean {found.model}@{close[0]}? " if close else "") + f"known versions: {', '.join(known[-10:])}"
    if gitx.is_shallow(reg.repo):
        hint += f"; {gitx.SHALLOW_HINT}"
    return RegistryError(f"version {version} of model {found.model!r} is not in git history at {reg.rev_name}", hint=hint)


def _locate(reg: RegistryRepo, model: ModelName, version: Version) -> tuple[ModelHistory, VersionRecord, str]:
    """History, record and the commit whose files are the version (history first, then a tag)."""
    found = _history(reg, model)
    record = found.get(version)
    if record is None:
        raise _unknown_version(reg, found, version)
    return found, record, record.commit.sha


def _model_version(repository: Repository, reg: RegistryRepo, model: ModelName, version: Version, commit: str) -> ModelVersion:
    # imported here: versions pulls in validation and jsonschema, which `models` and `history`
    # never need, and their import is a third of a `history` run
    from gitops_ml.registry.versions import version_at

    return version_at(repository, reg, model, version, commit)


def _repository_spec(reg: RegistryRepo) -> RepositorySpec:
    raw = read_at(reg, [REPOSITORY_FILE]).get(REPOSITORY_FILE)
    if raw is None:
        raise RegistryError(f"{REPOSITORY_FILE} is missing at {reg.rev_name}")
    try:
        return RepositorySpec.from_doc(parse_yaml(REPOSITORY_FILE, raw).data)
    except GitopsMlError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise RegistryError(f"{REPOSITORY_FILE} at {reg.rev_name} cannot be read: {exc}", hint="run `gitops-ml validate`") from None


def show(repository: Repository, model: str, version: Version, rev: str = "HEAD", *, referrers: bool = False) -> ShowResult:
    """Files, artifact, metrics, lineage, image reference and environments of model@version; with
    referrers, also what the image's registry holds next to it (SBOM, provenance)."""
    reg = open_registry(repository, rev)
    found, record, commit = _locate(reg, ModelName(model), version)
    mv = _model_version(repository, reg, ModelName(model), version, commit)
    files = tuple(FileInfo(path, len(data)) for path, data in sorted(mv.files().items()))
    ref: ImageRef | None = None
    problem = ""
    try:
        ref = mv.image_ref(_repository_spec(reg))
    except GitopsMlError as exc:
        problem = exc.message
    running = tuple(run for run in found.running.values() if run.version == version)
    attached = (image_referrers(ref) if ref else ImageReferrers(problem=problem)) if referrers else None
    return ShowResult(record, mv, files, ref, problem, running, attached)


# --- compare -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricDelta:
    name: str
    old: float | None
    new: float | None

    @property
    def delta(self) -> float | None:
        """new - old; None when either is missing or the difference is not a finite number."""
        if isinstance(self.old, (int, float)) and isinstance(self.new, (int, float)):
            delta = self.new - self.old
            return delta if math.isfinite(delta) else None
        return None


@dataclass(frozen=True)
class DependencyChange:
    name: str
    old: str | None  # the requirement line, None when added
    new: str | None  # None when removed


@dataclass(frozen=True)
class CompareResult:
    model: ModelName
    old: VersionRecord
    new: VersionRecord
    metrics: tuple[MetricDelta, ...]
    schema_changed: bool
    schema_breaks: tuple[str, ...]
    dependencies: tuple[DependencyChange, ...]
    artifact_changed: bool
    files_added: tuple[str, ...] = ()
    files_removed: tuple[str, ...] = ()
    files_changed: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)


_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def requirement_lines(text: str) -> dict[str, str]:
    """Normalised package name (PEP 503) -> requirement line; comments, blanks and options dropped."""
    out = {}
    for line in text.splitlines():
        line = line.split(" #", 1)[0].strip()
        match = _REQUIREMENT_NAME.match(line)
        if line and not line.startswith(("#", "-")) and match:
            out[re.sub(r"[-_.]+", "-", match[1]).lower()] = line
    return out


def _dependencies(mv: ModelVersion) -> dict[str, str]:
    files = mv.files()
    manifest = mv.entry.manifest
    if manifest.requirements and manifest.requirements in files:
        return requirement_lines(files[manifest.requirements].decode("utf-8", "replace"))
    if manifest.conda and manifest.conda in files:
        data = parse_yaml(manifest.conda, files[manifest.conda]).data
        lines: list[str] = []
        for dep in (data or {}).get("dependencies") or []:
            if isinstance(dep, str):
                lines.append(dep)
            elif isinstance(dep, dict):
                lines.extend(str(p) for p in dep.get("pip") or [])
        return requirement_lines("\n".join(lines))
    return {}


def _schema(mv: ModelVersion) -> Any:
    path = mv.entry.manifest.schema
    files = mv.files()
    if not path or path not in files:
        return None
    try:
        return json.loads(files[path])
    except ValueError:
        return None


def compare(repository: Repository, model: str, old: Version, new: Version, rev: str = "HEAD") -> CompareResult:
    """What changed from model@old to model@new: metrics, input schema, dependencies, artifact, files."""
    reg = open_registry(repository, rev)
    found = _history(reg, model)
    records = []
    for version in (old, new):
        record = found.get(version)
        if record is None:
            raise _unknown_version(reg, found, version)
        records.append(record)
    mv_old, mv_new = (_model_version(repository, reg, ModelName(model), r.version, r.commit.sha) for r in records)
    a, b = records[0].spec, records[1].spec
    metrics = tuple(MetricDelta(name, a.metrics.get(name), b.metrics.get(name)) for name in sorted(set(a.metrics) | set(b.metrics)))
    schema_a, schema_b = _schema(mv_old), _schema(mv_new)
    breaks = tuple(schema_breaks(schema_a, schema_b)) if schema_a is not None and schema_b is not None else ()
    deps_a, deps_b = _dependencies(mv_old), _dependencies(mv_new)
    dependencies = tuple(
        DependencyChange(name, deps_a.get(name), deps_b.get(name))
        for name in sorted(set(deps_a) | set(deps_b))
        if deps_a.get(name) != deps_b.get(name)
    )
    files_a, files_b = mv_old.files(), mv_new.files()
    notes = []
    if old > new:
        notes.append(f"{old} is newer than {new}: the comparison reads backwards")
    return CompareResult(
        ModelName(model),
        records[0],
        records[1],
        metrics,
        schema_a != schema_b,
        breaks,
        dependencies,
        (a.artifact.uri, a.artifact.sha256) != (b.artifact.uri, b.artifact.sha256),
        tuple(sorted(set(files_b) - set(files_a))),
        tuple(sorted(set(files_a) - set(files_b))),
        tuple(sorted(p for p in set(files_a) & set(files_b) if files_a[p] != files_b[p])),
        tuple(notes),
    )


# --- tag -----------------------------------------------------------------------------------------


def _collided(collisions: dict[tuple[str, str], list[str]]) -> list[str]:
    """`a and b point at C, where one/ registered them`, per tagged commit and other repository."""
    return [
        f"{' and '.join(names)} {'point' if len(names) > 1 else 'points'} at {sha[:12]}, where {_repository_name(other)} "
        f"registered {'them' if len(names) > 1 else 'it'}"
        for (sha, other), names in sorted(collisions.items())
    ]


def _repository_name(prefix: str) -> str:
    """A gitops-ml repository by its directory in the git work tree ("" is the top level)."""
    return prefix if prefix else "the top-level repository (./)"


@dataclass(frozen=True)
class PlannedTag:
    tag: VersionTag
    commit: str


@dataclass(frozen=True)
class TagResult:
    created: tuple[PlannedTag, ...]
    existing: int  # registration tags already in place
    pushed: bool = False


PUSH_BATCH = 2000  # refspecs per `git push`, far below the kernel's argument-length limit


def create_missing_tags(repository: Repository, rev: str = "HEAD", *, push: str | None = None, dry_run: bool = False) -> TagResult:
    """Create the `<model>@v<version>` annotated tag of every version registered in rev's history.

    Idempotent. A tag that exists on another commit is never moved: the whole run is refused and
    nothing is created, so CI fails loudly instead of tagging half the versions.
    """
    reg = open_registry(repository, rev)
    if gitx.is_shallow(reg.repo):
        # the oldest commit of a shallow clone looks as if it registered every version it carries
        raise RegistryError("refusing to tag in a shallow clone: the commits that registered versions may be missing", hint=gitx.SHALLOW_HINT)
    histories = all_model_histories(reg)
    planned: list[PlannedTag] = []
    conflicts: list[str] = []
    collisions: dict[tuple[str, str], list[str]] = defaultdict(list)  # (tagged commit, other repository) -> tags
    in_place: list[str] = []
    for found in histories.values():
        for record in found.versions:
            tag = VersionTag(found.model, record.version)
            if record.tag_commit is None:
                planned.append(PlannedTag(tag, record.commit.sha))
            elif record.tagged:
                in_place.append(tag.name)
            else:
                others = [] if carries_at(reg, found.model, record.version, record.tag_commit) else \
                    other_registrations(reg, found.model, record.version, record.tag_commit)
                if others:
                    collisions[(record.tag_commit, others[0])].append(tag.name)
                else:
                    conflicts.append(f"{tag.name} points at {record.tag_commit[:12]}, but {record.commit.sha[:12]} registered that version")
    if conflicts:
        conflicts += _collided(collisions)
        raise RegistryError(
            f"{len(conflicts)} tag(s) point at the wrong commit; refusing to move them: " + "; ".join(conflicts[:5]),
            hint="tags are never moved; if a tag is wrong, delete it (`git tag -d NAME` and `git push origin :refs/tags/NAME`) and run `gitops-ml tag` again",
        )
    if collisions:
        count = sum(len(names) for names in collisions.values())
        where = "; ".join(_collided(collisions))
        here = _repository_name(reg.prefix + "/" if reg.prefix else "")
        raise RegistryError(
            f"{count} tag(s) already mark another gitops-ml repository's versions in this git repository: {where}; refusing to move them",
            hint=f"gitops-ml repositories in one git repository share GTO's tag namespace (`<model>@v<version>`), so these versions of "
                 f"{here} cannot be tagged; give models names that are unique across the repositories, or keep each gitops-ml repository "
                 f"in a git repository of its own; without tags, versions still resolve from git history",
        )
    if not dry_run:
        gitx.create_annotated_tags(reg.repo, [(p.tag.name, p.commit, p.tag.message) for p in planned])
        if push:
            # tags already in place are pushed too: a run whose push failed left them local only,
            # and pushing a tag the remote already has costs nothing
            names = sorted(in_place + [p.tag.name for p in planned])
            for start in range(0, len(names), PUSH_BATCH):
                gitx.push_refs(reg.repo, push, [f"refs/tags/{name}" for name in names[start : start + PUSH_BATCH]])
    return TagResult(tuple(planned), len(in_place), bool(push and not dry_run))


__all__ = [
    "CompareResult",
    "EnvironmentState",
    "ModelSummary",
    "ModelsResult",
    "ShowResult",
    "TagResult",
    "compare",
    "create_missing_tags",
    "history",
    "list_models",
    "parse_model_version",
    "show",
]

