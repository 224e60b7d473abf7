"""Edits that become pull requests, planned: bump (retraining), and the checks of an environment's
pin that promote and rollback (edits.promotion) and the canary steps (edits.canary) build on. Each
use case checks everything against the working tree and git history first and returns an EditPlan
(new file texts, facts for the PR body); a refused edit writes nothing. Nothing here writes or prints.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import posixpath
import re
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Mapping

from gitops_ml.errors import EditError, GitopsMlError, LoadError, UsageError, ValidationError
from gitops_ml.history.fold import ModelHistory
from gitops_ml.registry.service import history
from gitops_ml.repo import catalog
from gitops_ml.repo.editing import (
    DeleteKey,
    Edit,
    FileEdit,
    SetValue,
    plan_file_edit,
)
from gitops_ml.repo.handle import Repository
from gitops_ml.repo.loading import parse_json, parse_yaml
from gitops_ml.types import DEPLOYMENTS_DIR, MODELS_DIR, Kind, ModelName, ModelPin, ModelSpec, Version
from gitops_ml.validate.compat import schema_breaks
from gitops_ml.validate.schema import schema_findings

SHA256 = re.compile(r"^[0-9a-f]{64}$")



class EditKind(str, Enum):
    BUMP = "bump"
    PROMOTE = "promote"
    ROLLBACK = "rollback"


class Part(str, Enum):
    MAJOR = "major"
    MINOR = "minor"
    PATCH = "patch"


@dataclass(frozen=True)
class Change:
    """A before/after pair shown in the pull request body."""

    name: str
    old: Any
    new: Any


@dataclass(frozen=True)
class EditPlan:
    """Everything an edit will do, computed before anything is written."""

    kind: EditKind
    model: ModelName
    old_version: Version | None
    new_version: Version
    files: tuple[FileEdit, ...]
    commit_paths: tuple[str, ...]  # what the commit takes from the working tree (relative to root)
    title: str
    default_branch: str
    environment: str = ""
    notes: tuple[str, ...] = ()
    artifact: tuple[Change, ...] = ()
    metrics: tuple[Change, ...] = ()
    schema_breaks: tuple[str, ...] = ()
    schema_diff: str = ""


# --- reading the working tree ------------------------------------------------------------------


def _read_spec(repository: Repository, model: str) -> tuple[str, ModelSpec]:
    root = repository.root
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", model):
        raise UsageError(f"{model!r} is not a model name")
    rel = f"{MODELS_DIR}/{model}/model.yaml"
    path = root / rel
    if not path.is_file():
        known = sorted(p.name for p in (root / MODELS_DIR).iterdir() if (p / "model.yaml").is_file()) if (root / MODELS_DIR).is_dir() else []
        close = difflib.get_close_matches(model, known, n=1)
        hint = f"did you mean {close[0]!r}?" if close else (f"known models: {', '.join(known)}" if known else f"models are the directories under {MODELS_DIR}/")
        raise EditError(f"unknown model {model!r}: {rel} does not exist", hint=hint)
    doc = _parse(rel, path.read_bytes())
    _refuse_findings(rel, doc, Kind.MODEL)
    return rel, ModelSpec.from_doc(doc.data)


def _parse(rel: str, raw: bytes) -> Any:
    try:
        return parse_yaml(rel, raw)
    except LoadError as exc:
        raise EditError(f"cannot edit: {exc}") from None


def _refuse_findings(rel: str, doc: Any, kind: Kind) -> None:
    findings = schema_findings(doc, kind)
    if findings:
        first = findings[0]
        raise EditError(f"{rel} does not validate: {first.message}", location=first.location, hint="fix it first: `gitops-ml validate`")


def _changed_text_doc(rel: str, text: str, kind: Kind) -> None:
    """The edited text must still pass its schema: a guard, the command-line values are checked first."""
    doc = _parse(rel, text.encode("utf-8"))
    findings = schema_findings(doc, kind)
    if findings:
        error = ValidationError(findings, f"the edit would make {rel} invalid: {findings[0]}")
        error.findings = []  # the message already names the finding; print it once
        error.hint = "check the values given on the command line"
        raise error


def _committed(repository: Repository, rel: str) -> bytes | None:
    try:
        return repository.at("HEAD").read(rel)
    except (GitopsMlError, FileNotFoundError):
        return None


# --- bump ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BumpRequest:
    repo: Repository
    model: str
    artifact: str | None = None
    sha256: str | None = None
    metrics_file: Path | None = None
    part: Part | None = None
    version: str | None = None
    lineage: Mapping[str, str] | None = None  # lineage entries to set (an import's source and run)
    reference: str | None = None  # the new reference profile's text, already checked (`monitor.service.check_reference`)


def _load_metrics(path: Path) -> dict[str, float]:
    if not path.is_file():
        raise UsageError(f"metrics file {path} does not exist", hint="the training job writes it; pass its path with --metrics")
    raw = path.read_bytes()
    try:
        doc = parse_json(str(path), raw) if path.suffix == ".json" else parse_yaml(str(path), raw)
    except LoadError as exc:
        raise UsageError(f"metrics file {exc}") from None
    data = doc.data
    if not isinstance(data, Mapping) or not data:
        raise UsageError(f"metrics file {path} must hold a mapping of metric name to number, e.g. {{\"accuracy\": 0.97}}")
    out: dict[str, float] = {}
    for key, value in data.items():
        if not isinstance(key, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", key):
            raise UsageError(f"metrics file {path}: {key!r} is not a metric name")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UsageError(f"metrics file {path}: {key} must be a number, got {value!r}")
        if not math.isfinite(value):
            # NaN and Infinity are not JSON, so history and show could not report them
            raise UsageError(f"metrics file {path}: {key} must be a finite number, got {value}",
                             hint="a metric the training run could not compute is better left out of the file")
        out[key] = value
    return out


_ARTIFACT_SCHEMES = ("https", "s3", "oci")
_URI_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")


def _check_artifact_option(model_dir: str, uri: str) -> None:
    """--artifact is a path inside the model directory or an https://, s3:// or oci:// URI; anything
    else is the command line's mistake (exit 2), refused before a file is read or written."""
    kinds = "a path relative to the model directory, or an https://, s3:// or oci:// URI"
    scheme = _URI_SCHEME.match(uri)
    if scheme and scheme[1].lower() not in _ARTIFACT_SCHEMES:
        raise UsageError(f"--artifact {uri!r}: {scheme[1]}:// is not supported", hint=f"pass {kinds}")
    pattern = catalog.schema(Kind.MODEL)["properties"]["artifact"]["properties"]["uri"]["pattern"]
    if scheme and not re.search(pattern, uri):
        raise UsageError(f"--artifact {uri!r} is not a valid artifact URI", hint=f"pass {kinds}; an s3:// URI names a bucket and a key")
    if scheme:
        return
    if not uri.strip() or uri.startswith(("/", "\\")) or re.match(r"^[a-zA-Z]:[\\/]", uri) or re.search(r"\s", uri):
        raise UsageError(f"--artifact {uri!r} must be a path relative to the model directory {model_dir}/, or an https://, s3:// or oci:// URI",
                         hint=f"copy the artifact into {model_dir}/ (the version is that directory), or upload it and pass its URI")
    normal = posixpath.normpath(uri)
    if normal == ".." or normal.startswith("../"):
        raise UsageError(f"--artifact {uri!r} escapes the model directory {model_dir}/",
                         hint=f"copy the artifact into {model_dir}/ (the version is that directory), or upload it and pass its URI")


def _schema_of(model: str, raw_manifest: bytes | None, read: Callable[[str], bytes | None]) -> Any:
    if raw_manifest is None:
        return None
    try:
        manifest = parse_yaml("manifest.yaml", raw_manifest).data
    except LoadError:
        return None
    rel = manifest.get("schema") if isinstance(manifest, Mapping) else None
    if not rel:
        return None
    raw = read(f"{MODELS_DIR}/{model}/{rel}")
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _schema_change(repository: Repository, model: str) -> tuple[list[str], str]:
    root = repository.root
    """Breaking changes and a unified diff between the committed input schema and the working tree's."""
    manifest_rel = f"{MODELS_DIR}/{model}/manifest.yaml"

    def work(rel: str) -> bytes | None:
        path = root / rel
        return path.read_bytes() if path.is_file() else None

    def committed(rel: str) -> bytes | None:
        return _committed(repository, rel)

    old = _schema_of(model, committed(manifest_rel), committed)
    new = _schema_of(model, work(manifest_rel), work)
    if old is None or new is None or old == new:
        return [], ""
    old_text = json.dumps(old, indent=2, sort_keys=True).splitlines(keepends=True)
    new_text = json.dumps(new, indent=2, sort_keys=True).splitlines(keepends=True)
    diff = "".join(difflib.unified_diff(old_text, new_text, "schema (committed)", "schema (new)"))
    return schema_breaks(old, new), diff


def plan_bump(request: BumpRequest) -> EditPlan:
    repository = request.repo
    root = repository.root
    rel, spec = _read_spec(repository, request.model)
    model_dir = f"{MODELS_DIR}/{request.model}"
    if request.artifact is not None:
        _check_artifact_option(model_dir, request.artifact)
    uri = request.artifact or spec.artifact.uri
    sha = request.sha256.strip() if request.sha256 else None
    if sha is not None and not SHA256.match(sha):
        raise UsageError(f"--sha256 {sha!r} is not a SHA-256 digest (64 lowercase hex characters)")
    local = root / model_dir / uri if "://" not in uri else None
    size: int | None = None
    if local is not None:
        if not local.is_file():
            raise EditError(f"artifact {model_dir}/{uri} does not exist", hint="train first, or pass the artifact's URI with --artifact")
        data = local.read_bytes()
        actual = hashlib.sha256(data).hexdigest()
        size = len(data)
        if sha is not None and sha != actual:
            raise UsageError(f"--sha256 does not match {model_dir}/{uri} (its sha256 is {actual})", hint="pass the digest of the artifact you trained")
        sha = actual
    elif sha is None:
        raise UsageError(f"--sha256 is required for the remote artifact {uri}")
    metrics = _load_metrics(request.metrics_file) if request.metrics_file is not None else None

    breaks, schema_diff = _schema_change(repository, request.model)
    notes: list[str] = []
    if request.version is not None:
        if not Version.is_valid(request.version):
            raise UsageError(f"--version {request.version!r} is not a semantic version (MAJOR.MINOR.PATCH)")
        new_version = Version.parse(request.version)
        if new_version <= spec.version:
            raise EditError(f"version {new_version} is not newer than {request.model}'s current version {spec.version}",
                            hint=f"the next versions are {spec.version.bump('patch')}, {spec.version.bump('minor')} and {spec.version.bump('major')}")
        if breaks and new_version.major == spec.version.major:
            raise EditError(f"the input schema changed incompatibly ({'; '.join(breaks[:3])}); version {new_version} needs a MAJOR bump",
                            hint=f"use {spec.version.bump('major')}")
    else:
        part = request.part or Part.MINOR
        if breaks and part is not Part.MAJOR:
            notes.append(f"MAJOR bump forced: the input schema changed incompatibly ({'; '.join(breaks[:3])})")
            part = Part.MAJOR
        new_version = spec.version.bump(part.value)

    edits: list[Edit] = [SetValue(("version",), str(new_version))]
    if request.artifact is not None:
        edits.append(SetValue(("artifact", "uri"), uri))
    edits.append(SetValue(("artifact", "sha256"), sha))
    raw_doc = parse_yaml(rel, (root / rel).read_bytes()).data
    if "size" in (raw_doc.get("artifact") or {}):
        edits.append(SetValue(("artifact", "size"), size) if size is not None else DeleteKey(("artifact", "size")))
    metric_changes: list[Change] = []
    if metrics is not None:
        # new values first, then the removals: the mapping is never left empty between two edits
        for name, value in metrics.items():
            edits.append(SetValue(("metrics", name), value))
        for name in sorted(set(spec.metrics) - set(metrics)):
            edits.append(DeleteKey(("metrics", name)))
        metric_changes = [Change(n, spec.metrics.get(n), metrics.get(n)) for n in sorted(set(spec.metrics) | set(metrics))]
    else:
        metric_changes = [Change(n, v, v) for n, v in sorted(spec.metrics.items())]
    for key, entry in (request.lineage or {}).items():
        edits.append(SetValue(("lineage", key), entry))
    reference_edits: list[FileEdit] = []
    if request.reference is not None:
        name = spec.reference or DEFAULT_REFERENCE
        if not spec.reference:
            edits.append(SetValue(("reference",), name))
        reference_edits.append(_new_text(root, f"{model_dir}/{name}", request.reference))
    file_edit = plan_file_edit(root, rel, edits)
    _changed_text_doc(rel, file_edit.after, Kind.MODEL)
    return EditPlan(
        kind=EditKind.BUMP,
        model=spec.name,
        old_version=spec.version,
        new_version=new_version,
        files=(file_edit, *reference_edits),
        commit_paths=(model_dir,),  # a version is the whole model directory (design §3)
        title=f"Bump {spec.name} to {new_version}",
        default_branch=f"gitops-ml/bump-{spec.name}",
        notes=tuple(notes),
        artifact=(Change("uri", spec.artifact.uri, uri), Change("sha256", spec.artifact.sha256, sha)),
        metrics=tuple(metric_changes),
        schema_breaks=tuple(breaks),
        schema_diff=schema_diff,
    )


DEFAULT_REFERENCE = "reference.json"


def _new_text(root: Path, rel: str, text: str) -> FileEdit:
    """A whole file replaced (or created) with `text`."""
    path = root / rel
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise EditError(f"{rel} is not a regular file; the edit would replace it", hint="remove it, or point `reference:` in model.yaml at another name")
    try:
        before = path.read_text(encoding="utf-8") if path.is_file() else None
    except (OSError, UnicodeDecodeError) as exc:
        raise EditError(f"cannot read {rel}: {exc}") from None
    return FileEdit(rel, before or "", text, created=before is None)


# --- an environment's pin (promote, rollback and canary build on these) ----------------------


def _deployment(repository: Repository, model: str, environment: str) -> tuple[str, ModelPin]:
    root = repository.root
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", environment):
        raise UsageError(f"{environment!r} is not an environment name")
    rel = f"{DEPLOYMENTS_DIR}/{environment}/{model}.yaml"
    path = root / rel
    if not path.is_file():
        envs = sorted(p.name for p in (root / DEPLOYMENTS_DIR).iterdir() if (p / f"{model}.yaml").is_file()) if (root / DEPLOYMENTS_DIR).is_dir() else []
        raise EditError(f"{model} is not deployed to {environment!r}: {rel} does not exist",
                        hint=f"{model} is deployed to: {', '.join(envs)}" if envs else f"add {rel} first")
    doc = _parse(rel, path.read_bytes())
    _refuse_findings(rel, doc, Kind.DEPLOYMENT)
    pin = ModelPin.parse(doc.data["model"])
    if pin.model != model:
        raise EditError(f"{rel} deploys {pin.model!r}, not {model!r}", location=doc.locate(["model"]))
    return rel, pin


def _history(repository: Repository, model: str) -> ModelHistory:
    try:
        return history(repository, model)
    except GitopsMlError as exc:
        raise EditError(exc.message, hint=exc.hint) from None


def _registered(repository: Repository, spec: ModelSpec) -> dict[Version, ModelSpec]:
    """Versions of the model known to git, plus the working tree's (it may not be committed yet)."""
    found = _history(repository, spec.name)
    versions = {record.version: record.spec for record in found.versions}
    versions.setdefault(spec.version, spec)
    return versions


def _running(pin: ModelPin, spec: ModelSpec) -> Version:
    return pin.version or spec.version


def _require(versions: Mapping[Version, ModelSpec], model: str, version: Version) -> None:
    if version not in versions:
        known = ", ".join(str(v) for v in sorted(versions)[-10:])
        raise EditError(f"version {version} of {model} does not exist", hint=f"known versions: {known}")
