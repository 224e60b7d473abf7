"""Edits that become pull requests: bump (retraining), promote and rollback (an environment's pin).

Each use case checks everything first and returns an EditPlan (new file texts, commit message,
facts for the PR body); `deliver` then writes atomically and, as asked, commits on a branch, pushes
to origin and opens or updates the pull request. A refused edit writes nothing. Nothing here prints.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import posixpath
import re
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Mapping

from gitops_ml import catalog
from gitops_ml.adapters import git as gitx
from gitops_ml.adapters.github import GitHubClient, GitHubSettings, PullRequest
from gitops_ml.adapters.gitwrite import BranchCommit, GitWriter
from gitops_ml.compat import schema_breaks
from gitops_ml.editing import (
    DeleteKey,
    DirectorySnapshot,
    Edit,
    FileEdit,
    SetValue,
    edit_text,
    plan_file_edit,
    undo_file_edits,
    write_file_edits,
)
from gitops_ml.errors import EditError, GitopsMlError, LoadError, UsageError, ValidationError
from gitops_ml.loading import parse_json, parse_yaml
from gitops_ml.types import DEPLOYMENTS_DIR, MODELS_DIR, REPOSITORY_FILE, Kind, ModelName, ModelPin, ModelSpec, Version
from gitops_ml.validation import schema_findings

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


@dataclass(frozen=True)
class Delivery:
    """How far an edit goes: the working tree only, a branch, a push, a pull request."""

    branch: str | None = None
    push: bool = False
    pr: bool = False

    def normalized(self, plan: EditPlan) -> "Delivery":
        # a pull request needs a pushed branch; a push needs a branch
        push = self.push or self.pr
        branch = self.branch or (plan.default_branch if push else None)
        return Delivery(branch, push, self.pr)


@dataclass
class EditResult:
    plan: EditPlan
    written: list[str] = field(default_factory=list)
    commit: BranchCommit | None = None
    pushed: bool = False
    pull_request: PullRequest | None = None
    pr_created: bool = False


# --- reading the working tree ------------------------------------------------------------------


def _read_spec(root: Path, model: str) -> tuple[str, ModelSpec]:
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


def _committed(root: Path, rel: str) -> bytes | None:
    try:
        return gitx.commit_tree(root, "HEAD").read(rel)
    except (GitopsMlError, FileNotFoundError):
        return None


# --- bump ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BumpRequest:
    root: Path
    model: str
    artifact: str | None = None
    sha256: str | None = None
    metrics_file: Path | None = None
    part: Part | None = None
    version: str | None = None


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


def _schema_of(root: Path, model: str, raw_manifest: bytes | None, read: Callable[[str], bytes | None]) -> Any:
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


def _schema_change(root: Path, model: str) -> tuple[list[str], str]:
    """Breaking changes and a unified diff between the committed input schema and the working tree's."""
    manifest_rel = f"{MODELS_DIR}/{model}/manifest.yaml"

    def work(rel: str) -> bytes | None:
        path = root / rel
        return path.read_bytes() if path.is_file() else None

    def committed(rel: str) -> bytes | None:
        return _committed(root, rel)

    old = _schema_of(root, model, committed(manifest_rel), committed)
    new = _schema_of(root, model, work(manifest_rel), work)
    if old is None or new is None or old == new:
        return [], ""
    old_text = json.dumps(old, indent=2, sort_keys=True).splitlines(keepends=True)
    new_text = json.dumps(new, indent=2, sort_keys=True).splitlines(keepends=True)
    diff = "".join(difflib.unified_diff(old_text, new_text, "schema (committed)", "schema (new)"))
    return schema_breaks(old, new), diff


def plan_bump(request: BumpRequest) -> EditPlan:
    root = Path(request.root)
    rel, spec = _read_spec(root, request.model)
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

    breaks, schema_diff = _schema_change(root, request.model)
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
        for name in sorted(set(spec.metrics) - set(metrics)):
            edits.append(DeleteKey(("metrics", name)))
        for name, value in metrics.items():
            edits.append(SetValue(("metrics", name), value))
        metric_changes = [Change(n, spec.metrics.get(n), metrics.get(n)) for n in sorted(set(spec.metrics) | set(metrics))]
    else:
        metric_changes = [Change(n, v, v) for n, v in sorted(spec.metrics.items())]
    file_edit = plan_file_edit(root, rel, edits)
    _changed_text_doc(rel, file_edit.after, Kind.MODEL)
    return EditPlan(
        kind=EditKind.BUMP,
        model=spec.name,
        old_version=spec.version,
        new_version=new_version,
        files=(file_edit,),
        commit_paths=(model_dir,),  # a version is the whole model directory (design §3)
        title=f"Bump {spec.name} to {new_version}",
        default_branch=f"gitops-ml/bump-{spec.name}",
        notes=tuple(notes),
        artifact=(Change("uri", spec.artifact.uri, uri), Change("sha256", spec.artifact.sha256, sha)),
        metrics=tuple(metric_changes),
        schema_breaks=tuple(breaks),
        schema_diff=schema_diff,
    )


# --- promote and rollback -------------------------------------------------------------------------


def _deployment(root: Path, model: str, environment: str) -> tuple[str, ModelPin]:
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


def _history(root: Path, model: str) -> Any:
    from gitops_ml.registry.service import history  # noqa: PLC0415 - service imports versions; keep import light

    try:
        return history(root, model)
    except GitopsMlError as exc:
        raise EditError(exc.message, hint=exc.hint) from None


def _registered(root: Path, spec: ModelSpec) -> dict[Version, ModelSpec]:
    """Versions of the model known to git, plus the working tree's (it may not be committed yet)."""
    found = _history(root, spec.name)
    versions = {record.version: record.spec for record in found.versions}
    versions.setdefault(spec.version, spec)
    return versions


def _running(pin: ModelPin, spec: ModelSpec) -> Version:
    return pin.version or spec.version


def _require(versions: Mapping[Version, ModelSpec], model: str, version: Version) -> None:
    if version not in versions:
        known = ", ".join(str(v) for v in sorted(versions)[-10:])
        raise EditError(f"version {version} of {model} does not exist", hint=f"known versions: {known}")


def _pin_plan(root: Path, kind: EditKind, model: str, environment: str, rel: str, old: Version, new: Version,
              versions: Mapping[Version, ModelSpec], notes: tuple[str, ...] = ()) -> EditPlan:
    file_edit = plan_file_edit(root, rel, [SetValue(("model",), f"{model}@{new}")])
    _changed_text_doc(rel, file_edit.after, Kind.DEPLOYMENT)
    old_spec, new_spec = versions.get(old), versions[new]
    artifact: tuple[Change, ...] = ()
    metrics: tuple[Change, ...] = ()
    if old_spec is not None:
        artifact = (Change("uri", old_spec.artifact.uri, new_spec.artifact.uri), Change("sha256", old_spec.artifact.sha256, new_spec.artifact.sha256))
        metrics = tuple(Change(n, old_spec.metrics.get(n), new_spec.metrics.get(n)) for n in sorted(set(old_spec.metrics) | set(new_spec.metrics)))
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
    root: Path
    model: str
    to: str
    version: str | None = None
    from_env: str | None = None


def plan_promote(request: PromoteRequest) -> EditPlan:
    root = Path(request.root)
    if request.version and request.from_env:
        raise UsageError("give --version or --from, not both")
    _, spec = _read_spec(root, request.model)
    rel, pin = _deployment(root, request.model, request.to)
    versions = _registered(root, spec)
    if request.version:
        text = request.version[1:] if request.version.startswith("v") else request.version
        if not Version.is_valid(text):
            raise UsageError(f"--version {request.version!r} is not a semantic version")
        target = Version.parse(text)
    elif request.from_env:
        if request.from_env == request.to:
            raise UsageError("--from and --to name the same environment")
        _, source = _deployment(root, request.model, request.from_env)
        target = _running(source, spec)
    else:
        target = spec.version
    _require(versions, request.model, target)
    current = _running(pin, spec)
    if pin.version == target:
        raise EditError(f"{request.to} already runs {request.model}@{target}")
    if target < current:
        raise EditError(f"{target} is older than the {current} that {request.to} runs", hint=f"moving back is `gitops-ml rollback {request.model} --env {request.to} --to {target}`")
    notes = () if pin.version else (f"{request.to} tracked the newest version; it is now pinned",)
    return _pin_plan(root, EditKind.PROMOTE, request.model, request.to, rel, current, target, versions, notes)


@dataclass(frozen=True)
class RollbackRequest:
    root: Path
    model: str
    env: str
    to: str | None = None


def plan_rollback(request: RollbackRequest) -> EditPlan:
    root = Path(request.root)
    _, spec = _read_spec(root, request.model)
    rel, pin = _deployment(root, request.model, request.env)
    versions = _registered(root, spec)
    current = _running(pin, spec)
    if request.to:
        text = request.to[1:] if request.to.startswith("v") else request.to
        if not Version.is_valid(text):
            raise UsageError(f"--to {request.to!r} is not a semantic version")
        target = Version.parse(text)
        _require(versions, request.model, target)
        if target >= current:
            raise EditError(f"{target} is not older than the {current} that {request.env} runs",
                            hint=f"moving forward is `gitops-ml promote {request.model} --to {request.env} --version {target}`")
    else:
        target = _previous(root, request.model, request.env, current, versions)
    return _pin_plan(root, EditKind.ROLLBACK, request.model, request.env, rel, current, target, versions)


def _previous(root: Path, model: str, environment: str, current: Version, versions: Mapping[Version, ModelSpec]) -> Version:
    """The version the environment ran before `current` (from the deployment file's history), or
    else the newest registered version older than current."""
    found = _history(root, model)
    ran = sorted(
        (run for record in found.versions for run in record.runs if run.environment == environment and run.version < current),
        key=lambda run: (run.since.date, run.since.sha),
    )
    if ran:
        return ran[-1].version  # type: ignore[no-any-return]
    older = [v for v in versions if v < current]
    if not older:
        raise EditError(f"{environment} runs {model}@{current} and no older version exists to roll back to")
    return max(older)


# --- delivering -------------------------------------------------------------------------------------


BodyMaker = Callable[[EditPlan, Path, str], str]
ClientMaker = Callable[[GitHubSettings], GitHubClient]


@dataclass(frozen=True)
class Ready:
    """What preflight found: the repository, and the commit the edit's branch has on origin
    (None: origin has no such branch, or it was not asked because nothing is pushed)."""

    writer: GitWriter | None
    remote_tip: str | None = None


def preflight(plan: EditPlan, root: Path, delivery: Delivery, github: GitHubSettings | None) -> Ready:
    """Refuse, before anything is written, what would fail half-way."""
    paths = [f.path for f in plan.files]
    try:
        writer = GitWriter(root)
    except GitopsMlError:
        if delivery.branch:
            raise EditError(f"{root} is not in a git repository; --branch needs one") from None
        return Ready(None)
    dirty = writer.dirty(paths)
    if dirty:
        raise EditError(f"uncommitted changes in {', '.join(dirty)}; the edit would overwrite them",
                        hint="commit or stash them first")
    if delivery.branch:
        writer.check_branch_name(delivery.branch)
        if not writer.has_commits():
            raise EditError("the repository has no commits yet; commit first")
        current = writer.current_branch()
        if current is None:
            raise EditError("HEAD is detached; --branch needs a branch to start from",
                            hint="check out the branch the pull request should target, e.g. `git switch main`")
        if current == delivery.branch:
            raise EditError(f"already on {delivery.branch!r}; run the edit from the branch it should target",
                            hint="e.g. `git switch main`, then run it again: the branch is updated, not duplicated")
        _refuse_stray_render_inputs(plan, root, writer)
    if delivery.push and writer.remote_url() is None:
        raise EditError("there is no 'origin' remote to push to", hint="add one with `git remote add origin URL`")
    if delivery.pr and github is None:
        raise EditError("--pr needs GitHub settings")  # the CLI always passes them; a guard for library use
    remote_tip = None
    if delivery.branch:
        # the edit replaces what an earlier run committed on its branch, and nothing else
        local_tip = writer.branch_sha(delivery.branch)
        if local_tip is not None:
            _refuse_foreign_commits(writer, delivery.branch, local_tip, on_origin=False)
        if delivery.push:
            remote_tip = writer.fetch_branch(delivery.branch)
            if remote_tip is not None:
                _refuse_foreign_commits(writer, delivery.branch, remote_tip, on_origin=True)
    return Ready(writer, remote_tip)


# the trailer that marks the commits an edit makes: only those are ever replaced by a later run
TRAILER = "Gitops-ml-edit"
# what commits made before the trailer existed end with
_LEGACY_MARK = re.compile(r"\n\nMade by `gitops-ml (bump|promote|rollback)`\.\s*$")


def _refuse_foreign_commits(writer: GitWriter, branch: str, tip: str, *, on_origin: bool) -> None:
    """Refuse to move a branch that holds commits gitops-ml did not make (a reviewer's fix-up,
    someone's own work on a branch of the same name): moving it would discard them."""
    commits = writer.commits_between("HEAD", tip, TRAILER)
    foreign = [c for c in commits if not c.trailers and not _LEGACY_MARK.search(c.message)]
    if not foreign:
        return
    where = f"branch {branch!r} on origin" if on_origin else f"local branch {branch!r}"
    listed = "; ".join(f"{c.sha[:12]} {c.subject} ({c.author})" for c in foreign[:3]) + ("; ..." if len(foreign) > 3 else "")
    count = f"{len(foreign)} commit{'s' if len(foreign) > 1 else ''}"
    delete = f"git push origin --delete {branch}" if on_origin else f"git branch -D {branch}"
    raise EditError(
        f"{where} has {count} that gitops-ml did not make: {listed}; running the edit again would discard them",
        hint=f"keep that work: merge the pull request with it, or move it elsewhere; to start over, delete the branch "
             f"(`{delete}`) or pass another --branch NAME",
    )


def _refuse_stray_render_inputs(plan: EditPlan, root: Path, writer: GitWriter) -> None:
    """The edit re-renders the render root from the working tree and commits it: an uncommitted
    change to anything render reads, outside what the edit commits, would leak into that commit
    as rendered output whose source is not in it (and the branch would fail `render --check`)."""
    render_root = committed_render_root(root)
    if render_root is None:
        return
    dirty = writer.dirty([REPOSITORY_FILE, MODELS_DIR, DEPLOYMENTS_DIR, render_root])
    stray = [path for path in dirty if not any(_within(path, p) for p in plan.commit_paths)]
    if stray:
        names = ", ".join(stray[:5]) + (f" and {len(stray) - 5} more" if len(stray) > 5 else "")
        raise EditError(f"uncommitted changes in {names}: the edit re-renders {render_root}/ from the working tree, so its commit would carry them",
                        hint="commit or stash them first (`git stash push --include-untracked`), then run the edit again")


def _within(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def deliver(
    plan: EditPlan,
    root: Path,
    delivery: Delivery,
    *,
    github: GitHubSettings | None = None,
    make_body: BodyMaker | None = None,
    make_client: ClientMaker = GitHubClient,
) -> EditResult:
    """Write the plan, then commit, push and open/update the pull request as delivery asks.

    All or nothing for the working tree: when any step fails (an unexpected exception too), every
    file the edit wrote gets its old content back and the user stays on the branch they started
    from; a commit already made is kept on its branch, so running the same command again finishes
    the job. Only when every step succeeded is the edit's branch checked out."""
    delivery = delivery.normalized(plan)
    ready = preflight(plan, root, delivery, github)
    writer = ready.writer
    result = EditResult(plan)
    base_before = writer.repo.git.rev_parse("HEAD") if writer is not None and writer.has_commits() else ""
    undo = _Undo(root, plan)
    try:
        result.written = write_file_edits(root, plan.files)
        rendered = rerender(root, plan)
        result.written += rendered
        if delivery.branch is None or writer is None:
            return result
        commit_paths = list(plan.commit_paths) + ([_render_root(root)] if rendered else [])
        reuse = [ready.remote_tip] if ready.remote_tip else []
        result.commit = writer.commit_on_branch(delivery.branch, commit_paths, commit_message(plan), reuse=reuse)
        if delivery.push:
            writer.push(delivery.branch, expected=ready.remote_tip)
            result.pushed = True
        if delivery.pr and github is not None:
            body = make_body(plan, root, base_before) if make_body is not None else plan.title
            with make_client(github) as client:
                result.pull_request, result.pr_created = client.open_or_update(
                    head=delivery.branch, base=result.commit.base_branch, title=plan.title, body=body
                )
        writer.switch_to(delivery.branch, commit_paths)
    except BaseException as exc:
        undo.restore(exc)
        if isinstance(exc, GitopsMlError) and result.commit is not None:
            exc.hint = "; ".join(h for h in (exc.hint, _kept_hint(result, delivery)) if h)
        raise
    return result


def _kept_hint(result: EditResult, delivery: Delivery) -> str:
    """Where a failure after the commit left the user, and what finishes the job."""
    commit = result.commit
    assert commit is not None
    kept = f"branch {commit.branch!r} (pushed to origin)" if result.pushed else f"the local branch {commit.branch!r}"
    if delivery.push and not result.pushed:
        finish = "run the same command again to push it"
    elif delivery.pr and result.pull_request is None:
        finish = "run the same command again to open the pull request"
    else:
        finish = f"`git switch {commit.branch}` checks it out"
    return f"you are still on {commit.base_branch!r} with your working tree as it was; the commit is kept on {kept}; {finish}"


class _Undo:
    """What an edit may write (its files and, when the render is committed, the render root),
    as it was before; `restore` puts it back."""

    def __init__(self, root: Path, plan: EditPlan) -> None:
        self.root = root
        self.plan = plan
        render_root = committed_render_root(root)
        self.render = DirectorySnapshot.take(root / render_root) if render_root is not None else None

    def restore(self, cause: BaseException) -> None:
        try:
            undo_file_edits(self.root, self.plan.files)
            if self.render is not None:
                self.render.restore()
        except Exception as exc:  # noqa: BLE001 - the first failure is the one to report
            note = f"the edit could not be undone ({exc}); restore the files with `git restore` or `git checkout`"
            if isinstance(cause, GitopsMlError):
                cause.hint = "; ".join(h for h in (cause.hint, note) if h)
            elif callable(add_note := getattr(cause, "add_note", None)):  # Python 3.11+
                add_note(note)


def _render_root(root: Path) -> str:
    from gitops_ml.render_service import render_root_of  # noqa: PLC0415 - the render stage loads on use

    return render_root_of(root)


def committed_render_root(root: Path) -> str | None:
    """The render root when this repository commits its render (an ownership file is there),
    else None: then an edit has no render to keep current."""
    from gitops_ml.writing import OWNERSHIP_FILE  # noqa: PLC0415 - the render stage loads on use

    render_root = _render_root(root)
    return render_root if (root / render_root / OWNERSHIP_FILE).is_file() else None


def rerender(root: Path, plan: EditPlan) -> list[str]:
    """Re-render a repository that commits its render, so the edit's pull request passes
    `render --check`; the written paths, relative to root."""
    from gitops_ml.render_service import RenderRequest, render_repository  # noqa: PLC0415

    render_root = committed_render_root(root)
    if render_root is None:
        return []  # this repository does not commit a render: nothing to keep current
    try:
        result = render_repository(RenderRequest(root))
    except GitopsMlError as exc:  # `deliver` undoes the edit
        exc.hint = "; ".join(h for h in (exc.hint, _undone_hint(exc)) if h)
        raise
    written = result.written
    if written is None:
        return []
    return [f"{render_root}/{p}" for p in [*written.written, *written.removed]]


def _undone_hint(exc: GitopsMlError) -> str:
    """What to fix, named by the kind of problem the re-render ran into."""
    if isinstance(exc, ValidationError):
        return "the edit was undone: the repository does not validate with it; fix the errors above (`gitops-ml validate`) and run it again"
    if isinstance(exc, LoadError):
        return "the edit was undone: fix the file that cannot be read and run it again"
    return "the edit was undone: fix the render error and run it again"


def commit_message(plan: EditPlan) -> str:
    lines = [plan.title, ""]
    if plan.old_version is not None:
        where = f" in {plan.environment}" if plan.environment else ""
        lines.append(f"{plan.model}{where}: {plan.old_version} -> {plan.new_version}")
    lines.extend(plan.notes)
    lines.append("")
    lines.append(f"Made by `gitops-ml {plan.kind.value}`; running it again replaces this commit.")
    lines.append("")
    subject = " ".join(p for p in (plan.kind.value, plan.model, plan.environment) if p)
    lines.append(f"{TRAILER}: {subject}")
    return "\n".join(lines).strip() + "\n"


__all__ = [
    "BumpRequest", "Change", "Delivery", "EditKind", "EditPlan", "EditResult", "Part", "PromoteRequest",
    "RollbackRequest", "commit_message", "deliver", "edit_text", "plan_bump", "plan_promote", "plan_rollback",
]
