"""The `render` use case: repository -> validated specs -> plan -> files -> render root (or a check).

By default every unit is rendered from the inputs and every file is compared byte for byte: the
ownership file in the render root is committed, so a pull request can edit it, and the CI gate must
not believe it. With `incremental`, every unit (a base, an endpoint) is keyed by the digests of the
files it is made from, and a unit whose key the ownership file records is neither validated,
planned nor rendered again; its files are compared with the recorded hashes. Nothing here prints.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from gitops_ml import __version__
from gitops_ml.errors import LoadError, Location, RenderError
from gitops_ml.render.files import Rendered, check_layout, render_base, render_endpoint, render_environment, unit_of
from gitops_ml.render.planning import Plan, Route, make_plan, resolve_versions
from gitops_ml.render.writing import (
    Changes,
    Ownership,
    StatCache,
    UnitRecord,
    WriteResult,
    apply,
    compare,
    differs_in_input_keys_only,
    read_ownership,
    sha256,
)
from gitops_ml.repo.handle import OWNERSHIP_FILE, Repository
from gitops_ml.repo.sources import read_regular
from gitops_ml.types import (
    DEPLOYMENTS_DIR,
    MODELS_DIR,
    REPOSITORY_FILE,
    EnvironmentName,
    ModelName,
    RepositorySpec,
)
from gitops_ml.validate.rules import require_specs
from gitops_ml.validate.specs import Specs

# bump when rendering changes for the same inputs, so that recorded unit keys stop matching
RENDERER_REVISION = "2"


@dataclass(frozen=True)
class RenderRequest:
    repo: Repository
    out: Path | None = None
    environments: tuple[str, ...] = ()
    check: bool = False
    incremental: bool = False  # trust the unit keys and file hashes the ownership file records


@dataclass
class RenderResult:
    label: str  # the render root as the user should read it
    render_dir: Path
    changes: Changes
    written: WriteResult | None
    rendered_units: int = 0
    reused_units: int = 0
    endpoints: int = 0


def _digest(*parts: bytes | str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\0")
    return h.hexdigest()


@dataclass
class InputDigests:
    """Digests of the files renders are made from, read once per run."""

    repository: bytes
    models: dict[str, str] = field(default_factory=dict)  # model -> digest of its directory
    deployments: dict[tuple[str, str], str] = field(default_factory=dict)  # (env, stem) -> digest

    @classmethod
    def read(cls, repository: Repository, cache: StatCache | None = None) -> "InputDigests":
        root = repository.root
        out = cls(read_regular(root / REPOSITORY_FILE) or b"")
        top = os.path.join(root, "")
        cut = len(top)
        models = os.path.join(root, MODELS_DIR)
        for name in sorted(os.listdir(models)) if os.path.isdir(models) else []:
            model_dir = os.path.join(models, name)
            if not os.path.isdir(model_dir):
                continue
            h = hashlib.sha256()
            for dirpath, dirnames, filenames in os.walk(model_dir):
                # the same files WorkTree.walk_files (and so the image digest) sees
                dirnames[:] = sorted(d for d in dirnames if d not in {"__pycache__", ".git"})
                for fname in sorted(filenames):
                    if fname.endswith((".pyc", ".pyo")):
                        continue
                    full = os.path.join(dirpath, fname)
                    rel = full[cut:]
                    digest = _file_digest(full, rel, cache)
                    if digest is not None:
                        h.update(f"{rel}\0{digest}\n".encode())
            out.models[name] = h.hexdigest()
        deployments = os.path.join(root, DEPLOYMENTS_DIR)
        for env in sorted(os.listdir(deployments)) if os.path.isdir(deployments) else []:
            env_dir = os.path.join(deployments, env)
            if not os.path.isdir(env_dir):
                continue
            for fname in sorted(os.listdir(env_dir)):
                full = os.path.join(env_dir, fname)
                if fname.endswith((".yaml", ".yml")):
                    digest = _file_digest(full, full[cut:], cache)
                    if digest is not None:
                        out.deployments[(env, fname.rsplit(".", 1)[0])] = digest
        return out


def _file_digest(full: str, rel: str, cache: StatCache | None) -> str | None:
    """sha256 of a regular file (a link is followed); None for anything else, which is never opened:
    validation skips a dangling link (an editor's lock file), a FIFO or a socket as well."""
    try:
        st = os.stat(full)
    except OSError:
        return None  # a dangling or looping link is not a file
    if not stat.S_ISREG(st.st_mode):
        return None
    try:
        if cache is not None:
            return cache.digest(full, rel, st)
        with open(full, "rb") as fh:
            return hashlib.sha256(fh.read()).hexdigest()
    except OSError as exc:
        raise LoadError(f"cannot be read: {exc.strerror or exc}", location=Location(rel)) from exc


def _require_specs(repository: Repository, models: set[str] | None) -> Specs:
    return require_specs(repository, "{errors} problem(s) in the repository; nothing was rendered", models=models)


def _label(root: Path, render_dir: Path) -> str:
    try:
        return render_dir.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(render_dir)


def _refuse_foreign_root(repository: Repository, render_dir: Path, from_option: bool) -> None:
    """The render root is owned by the tool: a filesystem root, or a directory that holds the
    repository itself, can never be one, and is refused before anything under it is read."""
    target, root = render_dir.resolve(), repository.root.resolve()
    if target == Path(target.anchor):
        why = "is a filesystem root"
    elif target == root or target in root.parents:
        why = f"holds the repository {root}"
    else:
        return
    raise RenderError(
        f"the render root {target} {why}; gitops-ml owns every file under its render root",
        location=None if from_option else repository.locate(REPOSITORY_FILE, ["renderRoot"]),
        hint="render into a directory of its own, e.g. " + ("--out build/deploy" if from_option else "renderRoot: deploy"),
    )


def render_repository(request: RenderRequest) -> RenderResult:
    """Render (or with check=True, compare) the render root of the repository."""
    repository = request.repo
    root = repository.root
    if not root.is_dir():
        raise RenderError(f"{root} is not a directory")
    repo = repository.config
    if repo is None:
        _require_specs(repository, None)  # raises with located findings
        raise RenderError(f"{REPOSITORY_FILE} cannot be read", location=Location(REPOSITORY_FILE))
    check_layout(repo)
    unknown = sorted(set(request.environments) - set(repo.environments))
    if unknown:
        raise RenderError(
            f"unknown environment {unknown[0]!r} (declared: {', '.join(sorted(repo.environments))})",
            location=Location(REPOSITORY_FILE),
        )
    chosen = set(request.environments or repo.environments)
    render_dir = request.out if request.out is not None else repository.render_dir
    _refuse_foreign_root(repository, render_dir, from_option=request.out is not None)
    label = _label(root, render_dir)
    previous = read_ownership(render_dir, label)
    input_cache = StatCache(root, "inputs")
    digests = InputDigests.read(repository, input_cache)
    input_cache.save()
    inputs = _digest("gitops-ml", __version__, RENDERER_REVISION, digests.repository)
    # only the incremental mode reuses what the (committed, hence editable) ownership file records
    old = previous if request.incremental and previous is not None and previous.inputs == inputs else None

    # unit keys of the current inputs
    keys: dict[str, str] = {}
    endpoint_models: dict[str, str] = {}
    for (env, stem), dep_digest in digests.deployments.items():
        if env in chosen:
            unit = unit_of("endpoint", env, stem)
            keys[unit] = _digest(inputs, dep_digest, digests.models.get(stem, ""))
            endpoint_models[unit] = stem
    deployed = sorted({stem for (env, stem) in digests.deployments})
    for stem in deployed:
        keys[unit_of("base", stem)] = _digest(inputs, stem)
    for name, digest in digests.models.items():
        keys[unit_of("source", name)] = _digest(inputs, digest)

    def dirty_models(units: Iterable[str]) -> set[str]:
        out = set()
        for unit in units:
            kind, _, rest = unit.partition("/")
            out.add(rest.rsplit("/", 1)[-1])
        return out

    stale_units = {u for u, k in keys.items() if old is None or u not in old.units or old.units[u].key != k}
    models = None if old is None else dirty_models(stale_units)
    result = _run(repository, repo, request, render_dir, label, chosen, keys, endpoint_models, models, old, previous, digests, inputs)
    if not request.check and old is not None and result.written is None:
        # files of reused units were edited or deleted by hand: render those units too, then write
        redo = _units_of_paths(old, result.changes)
        result = _run(repository, repo, request, render_dir, label, chosen, keys, endpoint_models, (models or set()) | dirty_models(redo), old, previous, digests, inputs, force=redo)
    return result


def _units_of_paths(old: Ownership, changes: Changes) -> set[str]:
    paths = {d.path for d in changes.differences if d.status in ("stale", "missing")}
    return {unit for unit, rec in old.units.items() if paths & set(rec.files)}


def _run(
    repository: Repository,
    repo: RepositorySpec,
    request: RenderRequest,
    render_dir: Path,
    label: str,
    chosen: set[str],
    keys: dict[str, str],
    endpoint_models: dict[str, str],
    models: set[str] | None,
    old: Ownership | None,
    previous: Ownership | None,
    digests: InputDigests,
    inputs: str,
    force: set[str] = frozenset(),  # type: ignore[assignment]
) -> RenderResult:
    specs = _require_specs(repository, models)
    locate = repository.locate
    in_scope = [d for d in specs.deployments if d.environment in chosen]
    versions = resolve_versions(repository, specs, in_scope, locate)
    fresh_units = {unit_of("endpoint", d.environment, d.model) for d in in_scope}
    # routes of endpoints that are not re-planned come from the record of the previous render
    other_routes = []
    if old is not None:
        for unit, rec in old.units.items():
            if unit in keys and unit not in fresh_units and rec.route:
                env, cluster, host, path, source = rec.route
                other_routes.append(Route(env, cluster, host, path, source))
    plan = make_plan(specs, versions, environments=sorted(chosen), locate=locate, other_routes=other_routes)

    rendered = Rendered()
    for ep in plan.endpoints:
        rendered.add(unit_of("endpoint", ep.environment.name, ep.model), render_endpoint(repo, ep))
    for unit in sorted(keys):
        kind, _, model = unit.partition("/")
        reusable = old is not None and unit not in force and unit in old.units and old.units[unit].key == keys[unit]
        if kind == "base" and not reusable:
            rendered.add(unit, render_base(repo, ModelName(model)))
    for env_name in sorted(chosen):
        env_models = sorted(stem for (env, stem) in digests.deployments if env == env_name)
        rendered.add(unit_of("environment", env_name), render_environment(repo, repo.environments[EnvironmentName(env_name)], [ModelName(m) for m in env_models]))

    ownership = Ownership(inputs=inputs)
    expected: dict[str, bytes | str] = {}
    routes = {unit_of("endpoint", ep.environment.name, ep.model): ep.route for ep in plan.endpoints}
    reused = 0
    for unit, key in sorted(keys.items()):
        if unit in rendered.units:
            paths = rendered.units[unit]
            for p in paths:
                expected[p] = rendered.files[p]
            route = routes.get(unit)
            ownership.units[unit] = UnitRecord(key, paths, [route.environment, route.cluster, route.host, route.path, route.source_path] if route else [])
        elif unit.startswith("source/"):
            ownership.units[unit] = UnitRecord(key, [])
        else:
            assert old is not None and unit not in force, unit
            rec = old.units[unit]
            for p in rec.files:
                expected[p] = old.files[p]
            ownership.units[unit] = rec
            reused += 1
    for unit in rendered.units:
        if unit.startswith("environment/"):
            for p in rendered.units[unit]:
                expected[p] = rendered.files[p]
            ownership.units[unit] = UnitRecord("", rendered.units[unit])
    # units of environments outside --env stay as they were, files and records
    keep: set[str] = set()
    if previous is not None and request.environments:
        for unit, rec in previous.units.items():
            kind, _, rest = unit.partition("/")
            if kind in ("endpoint", "environment") and rest.split("/", 1)[0] not in chosen:
                ownership.units[unit] = rec
                keep.update(rec.files)
    for p, want in expected.items():
        ownership.files[p] = want if isinstance(want, str) else sha256(want)
    for p in keep:
        if previous is not None and p in previous.files:
            ownership.files[p] = previous.files[p]
    manifest = ownership.to_bytes()
    expected[OWNERSHIP_FILE] = manifest
    # the full mode reads every file: a stat cache is one more thing it would have to trust
    cache = StatCache(render_dir) if request.incremental else None
    changes = compare(render_dir, expected, previous, keep=frozenset(keep), cache=cache, label=label)
    if request.check:
        _forgive_input_keys(render_dir, changes, manifest)
    result = RenderResult(label, render_dir, changes, None, len(rendered.units), reused, len(plan.endpoints))
    if request.check:
        if cache is not None:
            cache.save()
        return result
    needs = _units_of_paths(old, changes) if old is not None else set()
    if needs - set(rendered.units):
        return result  # the caller re-renders those units first
    files = {p: v for p, v in expected.items() if isinstance(v, bytes)}
    result.written = apply(render_dir, files, changes, label, previous)
    if cache is not None:
        for path in result.written.written + result.written.removed:
            cache.fresh.pop(path, None)  # re-stat next time: the file was just replaced
        cache.save()
    return result


def _forgive_input_keys(render_dir: Path, changes: Changes, manifest: bytes) -> None:
    """A check passes when the manifests are current and the ownership file differs only in input
    keys: those only decide what --incremental may reuse, and a write refreshes them."""
    stale = [d for d in changes.differences if d.path == OWNERSHIP_FILE and d.status == "stale"]
    if not stale:
        return
    try:
        found = (render_dir / OWNERSHIP_FILE).read_bytes()
    except OSError:
        return
    if differs_in_input_keys_only(found, manifest):
        changes.differences.remove(stale[0])
        changes.unchanged += 1


def plan_repository(repository: Repository, environments: Iterable[str] | None = None, *, deep: bool = True) -> Plan:
    """The full plan of a repository's working tree, without touching any render root. `deep=False`
    (a reader of the plan, such as status) skips the checks only building and serving need."""
    specs = require_specs(repository, "{errors} problem(s) in the repository; nothing was rendered", deep=deep)
    locate = repository.locate
    versions = resolve_versions(repository, specs, specs.deployments, locate)
    return make_plan(specs, versions, environments=environments, locate=locate)
