"""Registry events read from git through adapters.git, in a handful of git processes per question.

One `git log --raw` lists the commits that touched a model's files with their blob ids, one
`git cat-file --batch` reads those blobs, one `git for-each-ref` reads the tags; then the pure fold in
`state` answers. Old files are read leniently: a model.yaml that no longer validates still counts
as a version if it names one. Nothing here prints.
"""

from __future__ import annotations

import posixpath
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from gitops_ml.adapters import git as gitx
from gitops_ml.errors import GitopsMlError
from gitops_ml.history.fold import (
    CommitEvents,
    CommitInfo,
    Event,
    ModelChanged,
    ModelHistory,
    PinChanged,
    fold_history,
)
from gitops_ml.history.tags import format_tag, parse_tag, tag_pattern
from gitops_ml.repo.handle import Repository
from gitops_ml.repo.loading import parse_yaml
from gitops_ml.types import (
    DEPLOYMENTS_DIR,
    MODELS_DIR,
    REPOSITORY_FILE,
    EnvironmentName,
    ModelName,
    ModelPin,
    ModelSpec,
    Version,
)

MODEL_FILE = "model.yaml"


@dataclass(frozen=True)
class RegistryRepo:
    """A gitops-ml repository (possibly a sub-directory of a git work tree) read at one commit."""

    repo: gitx.GitRepo
    prefix: str
    rev: str  # the commit id questions are answered at
    rev_name: str  # what the user asked for, for messages

    def full(self, rel: str) -> str:
        """Repository-relative path -> path in the git tree."""
        return posixpath.join(self.prefix, rel) if self.prefix else rel

    def rel(self, full: str) -> str:
        return full[len(self.prefix) + 1 :] if self.prefix else full

    def model_file(self, model: str) -> str:
        return self.full(f"{MODELS_DIR}/{model}/{MODEL_FILE}")


def open_registry(repository: Repository, rev: str = "HEAD") -> RegistryRepo:
    """The registry of a repository at rev (HEAD by default), through the handle's git checkout."""
    checkout = repository.checkout()
    return RegistryRepo(checkout.repo, checkout.prefix, gitx.rev_parse(checkout.repo, rev), rev)


def _data(path: str, raw: bytes) -> Any:
    try:
        return parse_yaml(path, raw).data
    except GitopsMlError:
        return None


def read_model_spec(path: str, raw: bytes) -> ModelSpec | None:
    """The ModelSpec of a model.yaml from any commit, or None when it cannot be read as one."""
    data = _data(path, raw)
    if not isinstance(data, dict):
        return None
    try:
        return ModelSpec.from_doc(data)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def read_pin(path: str, raw: bytes) -> ModelPin | None:
    """The `model:` pin of a deployment file from any commit, or None when it has none."""
    data = _data(path, raw)
    if not isinstance(data, dict) or not isinstance(data.get("model"), str):
        return None
    try:
        return ModelPin.parse(data["model"])
    except ValueError:
        return None


def _commit(entry: gitx.LogEntry) -> CommitInfo:
    return CommitInfo(entry.commit, entry.date, entry.author, entry.email, entry.subject)


def model_tags(reg: RegistryRepo, model: str | None = None) -> dict[ModelName, dict[Version, str]]:
    """model -> version -> commit of its registration tag (one `git for-each-ref`)."""
    tags: dict[ModelName, dict[Version, str]] = defaultdict(dict)
    for ref in gitx.list_tags(reg.repo, [tag_pattern(model)] if model else []):
        parsed = parse_tag(ref.name)
        if parsed is not None and (model is None or parsed.model == model):
            tags[parsed.model][parsed.version] = ref.commit
    return tags


# the top-level `version:` line of a model.yaml as people and gitops-ml write it; anything else is parsed
_VERSION_LINE = re.compile(rb"^version:[ \t]*[\"']?([^\s\"'#]+)[\"']?[ \t]*(?:#.*)?$", re.MULTILINE)


def _carries(path: str, raw: bytes | None, version: Version) -> bool:
    """Whether a model.yaml (None: no such file) carries version."""
    if raw is None:
        return False
    lines = _VERSION_LINE.findall(raw)
    if len(lines) == 1:
        return bool(lines[0].decode("utf-8", "replace") == str(version))
    spec = read_model_spec(path, raw)
    return spec is not None and spec.version == version


def registration_tags(reg: RegistryRepo, tags: dict[ModelName, dict[Version, str]]) -> dict[ModelName, dict[Version, str]]:
    """The tags that mark a version of *this* repository: the tagged commit registered it here
    (its model.yaml at this repository's path carries the version, its first parent's does not).

    Two gitops-ml repositories in one git repository share GTO's tag namespace, so `iris@v1.0.0`
    may mark the other repository's iris; this is the check `history` and `show` make by comparing
    the tag with the registering commit, done with one `git cat-file --batch` and no history."""
    names = {(model, version): (f"{sha}:{reg.model_file(model)}", f"{sha}^:{reg.model_file(model)}")
             for model, versions in tags.items() for version, sha in versions.items()}
    raw = gitx.read_objects(reg.repo, (name for pair in names.values() for name in pair))
    out: dict[ModelName, dict[Version, str]] = defaultdict(dict)
    for (model, version), (at, before) in names.items():
        path = reg.model_file(model)
        if _carries(path, raw.get(at), version) and not _carries(path, raw.get(before), version):
            out[model][version] = tags[model][version]
    return out


def shares_git_repository(reg: RegistryRepo) -> bool:
    """Whether the git repository holds, at the registry's commit, a gitops-ml repository other than this one."""
    ours = reg.full(REPOSITORY_FILE)
    return any(p != ours and posixpath.basename(p) == REPOSITORY_FILE for p in gitx.list_tree(reg.repo, reg.rev, []))


def carries_at(reg: RegistryRepo, model: ModelName, version: Version, sha: str) -> bool:
    """Whether commit sha's model.yaml of model, at this repository's path, carries version."""
    name = f"{sha}:{reg.model_file(model)}"
    return _carries(reg.model_file(model), gitx.read_objects(reg.repo, [name]).get(name), version)


def other_registrations(reg: RegistryRepo, model: ModelName, version: Version, sha: str) -> list[str]:
    """Directories ("" for the top level) of the other gitops-ml repositories in this git
    repository whose model.yaml of model carries version at commit sha (asked only to explain a
    tag collision: it lists the commit's whole tree)."""
    suffix = f"{MODELS_DIR}/{model}/{MODEL_FILE}"
    paths = [p for p in gitx.list_tree(reg.repo, sha, []) if (p == suffix or p.endswith("/" + suffix)) and p != reg.model_file(model)]
    raw = gitx.read_objects(reg.repo, [f"{sha}:{p}" for p in paths])
    return sorted(p[: -len(suffix)] for p in paths if _carries(p, raw.get(f"{sha}:{p}"), version))


def model_history(reg: RegistryRepo, model: ModelName) -> ModelHistory:
    """Versions of one model and where they ran: one log, one batch read, one tag listing."""
    model_file = reg.model_file(model)
    # literal pathspecs only: a wildcard (`deployments/*/M.yaml`) or the whole deployments/ directory
    # makes git log three times slower on long histories. The price: an environment directory
    # deleted before rev no longer shows in the history.
    environments = gitx.list_dirs(reg.repo, reg.rev, reg.full(DEPLOYMENTS_DIR))
    deployment_files = [reg.full(f"{DEPLOYMENTS_DIR}/{env}/{model}.{ext}") for env in environments for ext in ("yaml", "yml")]
    entries = gitx.log_changes(reg.repo, reg.rev, [model_file, *deployment_files])
    wanted = [
        (entry, [c for c in entry.changes if c.path == model_file or _is_deployment_file(reg.rel(c.path), model)])
        for entry in entries
    ]
    blobs = gitx.read_objects(reg.repo, (c.blob for _, changes in wanted for c in changes if c.blob))
    steps = []
    for entry, changes in wanted:
        if not changes:
            continue
        events: list[Event] = []
        for change in changes:
            raw = blobs.get(change.blob) if change.blob else None
            rel = reg.rel(change.path)
            if change.path == model_file:
                events.append(ModelChanged(read_model_spec(rel, raw) if raw is not None else None))
            else:
                environment = EnvironmentName(rel.split("/")[1])
                events.append(PinChanged(environment, read_pin(rel, raw) if raw is not None else None))
        # a commit that edits model.yaml and a pin together: the version exists before the pin moves
        events.sort(key=lambda e: not isinstance(e, ModelChanged))
        steps.append(CommitEvents(_commit(entry), tuple(events)))
    return fold_history(model, steps, model_tags(reg, model).get(model, {}))


def _is_deployment_file(rel: str, model: str) -> bool:
    parts = rel.split("/")
    return len(parts) == 3 and parts[0] == DEPLOYMENTS_DIR and parts[2] in {f"{model}.yaml", f"{model}.yml"}


def all_model_histories(reg: RegistryRepo) -> dict[ModelName, ModelHistory]:
    """Versions of every model that ever had a model.yaml (no deployments): one log, one batch read."""
    entries = gitx.log_changes(reg.repo, reg.rev, [reg.full(MODELS_DIR)])

    def is_model_file(path: str) -> bool:
        parts = reg.rel(path).split("/")
        return len(parts) == 3 and parts[2] == MODEL_FILE

    wanted = [(entry, [c for c in entry.changes if is_model_file(c.path)]) for entry in entries]
    blobs = gitx.read_objects(reg.repo, (c.blob for _, changes in wanted for c in changes if c.blob))
    steps: dict[ModelName, list[CommitEvents]] = defaultdict(list)
    for entry, changes in wanted:
        info = _commit(entry)
        for change in changes:
            rel = reg.rel(change.path)
            model = ModelName(rel.split("/")[1])
            raw = blobs.get(change.blob) if change.blob else None
            spec = read_model_spec(rel, raw) if raw is not None else None
            steps[model].append(CommitEvents(info, (ModelChanged(spec),)))
    tags = model_tags(reg)
    return {model: fold_history(model, history, tags.get(model, {})) for model, history in sorted(steps.items())}


def tagged_commit(reg: RegistryRepo, model: ModelName, version: Version) -> str | None:
    """Commit of the `<model>@v<version>` tag when the tag exists and that commit's model.yaml
    carries the version; None otherwise (then history decides)."""
    name = format_tag(model, version)
    refs = [ref for ref in gitx.list_tags(reg.repo, [name]) if ref.name == name]
    if not refs:
        return None
    spec_path = f"{refs[0].commit}:{reg.model_file(model)}"
    raw = gitx.read_objects(reg.repo, [spec_path]).get(spec_path)
    spec = read_model_spec(reg.model_file(model), raw) if raw is not None else None
    return refs[0].commit if spec is not None and spec.version == version else None


def models_at(reg: RegistryRepo) -> list[ModelName]:
    """Model directories at the registry's commit."""
    files = gitx.list_tree(reg.repo, reg.rev, [reg.full(MODELS_DIR)])
    return sorted({ModelName(reg.rel(p).split("/")[1]) for p in files if reg.rel(p).count("/") >= 2})


def read_at(reg: RegistryRepo, rels: Iterable[str]) -> dict[str, bytes]:
    """Files (repository-relative) at the registry's commit; missing ones are left out."""
    names = {f"{reg.rev}:{reg.full(rel)}": rel for rel in rels}
    return {names[name]: raw for name, raw in gitx.read_objects(reg.repo, names).items()}
