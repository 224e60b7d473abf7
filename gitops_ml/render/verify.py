"""`render --verify`: build every rendered kustomization with real Kustomize and validate the output.

Built-in kinds are checked against the Kubernetes OpenAPI schemas (kubernetes-validate, 1.30: the oldest Kubernetes the rendered objects run on); custom
resources against the CRD schemas shipped in schemas/crds, or the user's (--crds). Kinds with no schema
are counted and named, never silently passed. Kustomizations are built many per Kustomize process, in
parallel, and a kustomization whose inputs were verified before (same digest) is answered from a cache.
Never prints: progress goes to a callback.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import yaml

from gitops_ml import __version__
from gitops_ml.adapters import kubernetes as kube
from gitops_ml.adapters import kustomize
from gitops_ml.adapters.artifacts import cache_root
from gitops_ml.errors import ExternalToolError, Location
from gitops_ml.render.writing import StatCache
from gitops_ml.types import Finding

CRDS_ENV = "GITOPS_ML_CRDS"
BATCH_SIZE = 24  # overlays per Kustomize process: ~25 ms each after start-up; larger batches grow superlinearly
_URL_MARKERS = ("://", "github.com/", "git@")


@dataclass
class Tally:
    """Counts for one kustomization (kept in the cache) or for the whole run."""

    objects: int = 0
    validated: int = 0
    rules_evaluated: int = 0
    unchecked: dict[str, int] = field(default_factory=dict)  # "Kind apiVersion" -> count without a schema
    rules_skipped: dict[str, int] = field(default_factory=dict)  # why -> count of CEL rules not evaluated

    def add(self, other: "Tally") -> None:
        self.objects += other.objects
        self.validated += other.validated
        self.rules_evaluated += other.rules_evaluated
        for key, count in other.unchecked.items():
            self.unchecked[key] = self.unchecked.get(key, 0) + count
        for key, count in other.rules_skipped.items():
            self.rules_skipped[key] = self.rules_skipped.get(key, 0) + count


@dataclass
class VerifyReport:
    """What --verify built and found."""

    tool: str = ""
    built: list[str] = field(default_factory=list)  # kustomization directories, relative to the render root
    cached: int = 0  # of them, answered from the cache (inputs unchanged since a clean verify)
    tally: Tally = field(default_factory=Tally)
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def objects(self) -> int:
        return self.tally.objects

    @property
    def validated(self) -> int:
        return self.tally.validated

    @property
    def unchecked(self) -> dict[str, int]:
        return self.tally.unchecked


@dataclass(frozen=True)
class VerifyProgress:
    """Kustomizations done so far (built or from the cache) out of all of them."""

    done: int
    total: int
    cached: int


def kustomization_dirs(render_dir: Path) -> list[Path]:
    """Every overlay (apps/<env>/<model>) and every clusters/<env>: what the engines build."""
    out = []
    apps = render_dir / "apps"
    for env in sorted(os.listdir(apps)) if apps.is_dir() else []:
        if env == "base":
            continue
        for model in sorted(os.listdir(apps / env)):
            if (apps / env / model / "kustomization.yaml").is_file():
                out.append(apps / env / model)
    clusters = render_dir / "clusters"
    for env in sorted(os.listdir(clusters)) if clusters.is_dir() else []:
        if (clusters / env / "kustomization.yaml").is_file():
            out.append(clusters / env)
    return out


def crd_directories(explicit: list[Path]) -> list[Path]:
    """--crds directories, else $GITOPS_ML_CRDS; they add to (and override) the shipped CRD schemas."""
    if explicit:
        return explicit
    env = os.environ.get(CRDS_ENV, "")
    return [Path(p) for p in env.split(os.pathsep) if p]


def batches(directories: Sequence[Path], size: int) -> list[list[Path]]:
    """Directories in groups of at most `size` that share a parent (one environment's overlays, or the
    clusters): the objects of one environment never share a namespace-and-name, so a batch seldom fails
    for a reason its members would not fail for alone."""
    groups: dict[Path, list[Path]] = {}
    for directory in directories:
        groups.setdefault(directory.parent, []).append(directory)
    out = []
    for members in groups.values():
        out += [members[i : i + size] for i in range(0, len(members), size)]
    return out


class _Digests:
    """Digest of everything a kustomization reads: its directory and the local directories and files
    its kustomization files name, recursively. None when it reads something remote (never cached).
    File digests come from a stat cache (size, mtime, inode), as `render --check` reads them; the paths a
    kustomization file names are parsed once per content of that file."""

    def __init__(self, render_dir: Path, stat: StatCache, references: dict[str, list[str]] | None = None) -> None:
        self._root = str(render_dir.resolve())
        self._stat = stat
        self._dirs: dict[str, str | None] = {}
        self.known_references = references or {}
        self.references: dict[str, list[str]] = {}

    def _file(self, path: str) -> str:
        key = os.path.relpath(path, self._root) if path.startswith(self._root + os.sep) else path
        return self._stat.digest(path, key)

    def of(self, directory: Path | str) -> str | None:
        top = os.path.realpath(directory)
        if top in self._dirs:
            return self._dirs[top]
        self._dirs[top] = None  # a cycle reads as uncacheable
        h = hashlib.sha256()
        try:
            files = sorted(
                os.path.relpath(os.path.join(here, name), top) for here, _, names in os.walk(top) for name in names
            )
            kustomization = ""
            for rel in files:
                digest = self._file(os.path.join(top, rel))
                h.update(f"{rel}\0{digest}".encode())
                if rel == "kustomization.yaml":
                    kustomization = digest
            for ref in self._references(os.path.join(top, "kustomization.yaml"), kustomization):
                if any(m in ref for m in _URL_MARKERS):
                    return None
                target = os.path.realpath(os.path.join(top, ref))
                if os.path.isdir(target):
                    sub = self.of(target)
                    if sub is None:
                        return None
                    h.update(f"dir {ref}\0{sub}".encode())
                elif os.path.isfile(target):
                    h.update(f"file {ref}\0{self._file(target)}".encode())
        except (OSError, ValueError, yaml.YAMLError):
            return None
        self._dirs[top] = h.hexdigest()
        return self._dirs[top]

    def _references(self, path: str, digest: str) -> list[str]:
        refs = self.known_references.get(digest) if digest else None
        if refs is None:
            refs = _references(Path(path))
        if digest:
            self.references[digest] = refs
        return refs


def _references(kustomization: Path) -> list[str]:
    doc = yaml.load(kustomization.read_bytes(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
    refs: list[str] = []
    for key in ("resources", "components", "bases", "crds"):
        refs += [str(r) for r in doc.get(key) or [] if isinstance(r, str)]
    for patch in doc.get("patches") or []:
        if isinstance(patch, dict) and isinstance(patch.get("path"), str):
            refs.append(patch["path"])
    refs += [str(r) for r in doc.get("patchesStrategicMerge") or [] if isinstance(r, str) and "\n" not in r]
    return refs


class _Cache:
    """Tallies of kustomizations that verified clean, by input digest; one file per render root, in the
    user's cache directory. Entries not seen in a run are dropped when it is saved."""

    def __init__(self, render_dir: Path, key: str) -> None:
        name = hashlib.sha256(str(render_dir.resolve()).encode()).hexdigest()[:24]
        self.path = cache_root() / "verify" / f"{name}.json"
        self.key = key
        self.entries: dict[str, dict[str, Any]] = {}
        self.kept: dict[str, dict[str, Any]] = {}
        # kustomization file sha256 -> the paths it names, so an unchanged file is not parsed again
        self.references: dict[str, list[str]] = {}
        try:
            doc = json.loads(self.path.read_bytes())
            if doc.get("key") == key:
                self.entries = dict(doc["entries"])
                self.references = {str(k): [str(r) for r in v] for k, v in doc["references"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass
        self.seen_references: dict[str, list[str]] = {}

    def get(self, digest: str | None) -> Tally | None:
        entry = self.entries.get(digest) if digest else None
        if entry is None:
            return None
        try:
            tally = Tally(**entry)
        except TypeError:
            return None
        self.kept[digest] = entry  # type: ignore[index]
        return tally

    def put(self, digest: str | None, tally: Tally) -> None:
        if digest:
            self.kept[digest] = asdict(tally)

    def save(self) -> None:
        # replaced whole, never fsynced: losing it in a crash only costs time (fsync took seconds on busy disks)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"key": self.key, "entries": self.kept, "references": self.seen_references}, sort_keys=True))
            os.replace(tmp, self.path)
        except OSError:
            pass  # a cache that cannot be written only costs time next run


def _check_objects(objects: Iterable[dict[str, Any]], schemas: kube.Schemas, where: Location, findings: list[Finding]) -> Tally:
    tally = Tally()
    for obj in objects:
        tally.objects += 1
        name = f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"
        try:
            outcome = schemas.check(obj)
        except kube.NoSchema:
            key = f"{obj.get('kind')} {obj.get('apiVersion')}"
            tally.unchecked[key] = tally.unchecked.get(key, 0) + 1
            continue
        tally.validated += 1
        tally.rules_evaluated += outcome.rules_evaluated
        for why, count in outcome.rules_skipped.items():
            tally.rules_skipped[why] = tally.rules_skipped.get(why, 0) + count
        for error in outcome.errors:
            findings.append(Finding(where, f"{name}: {error}"))
    return tally


def verify_render(
    render_dir: Path,
    label: str,
    *,
    crds: Sequence[Path] = (),
    kubernetes_version: str = kube.KUBERNETES_VERSION,
    progress: Callable[[VerifyProgress], None] | None = None,
    cache: bool = True,
    batch_size: int = BATCH_SIZE,
    workers: int | None = None,
) -> VerifyReport:
    """Build and validate every kustomization under render_dir; findings name the kustomization file."""
    tool = kustomize.find_kustomize()
    schemas = kube.Schemas(list(crds), kubernetes_version=kubernetes_version, cache=cache_root() / "validators" if cache else None)
    report = VerifyReport(tool=str(tool))
    dirs = kustomization_dirs(render_dir)
    store = _Cache(render_dir, f"{__version__}\0{_identity(tool)}\0{schemas.digest}") if cache else None
    stat = StatCache(render_dir, purpose="verify")
    digests = _Digests(render_dir, stat, store.references if store else None)
    digest_of = {d: digests.of(d) for d in dirs} if store else {}
    todo = []
    done = 0

    def tell() -> None:
        if progress is not None:
            progress(VerifyProgress(done, len(dirs), report.cached))

    for directory in dirs:
        tally = store.get(digest_of[directory]) if store else None
        if tally is None:
            todo.append(directory)
            continue
        report.built.append(directory.relative_to(render_dir).as_posix())
        report.tally.add(tally)
        report.cached += 1
        done += 1
    tell()
    size = batch_size if todo and kustomize.can_batch(tool) else 1
    for directory, built in kustomize.build_many(tool, batches(todo, size), workers):
        rel = directory.relative_to(render_dir).as_posix()
        where = Location(f"{label}/{rel}/kustomization.yaml")
        report.built.append(rel)
        done += 1
        if isinstance(built, ExternalToolError):
            report.findings.append(Finding(where, built.message))
        else:
            before = len(report.findings)
            tally = _check_objects(built, schemas, where, report.findings)
            report.tally.add(tally)
            if store and len(report.findings) == before:
                store.put(digest_of[directory], tally)
        tell()
    report.built.sort()
    report.findings.sort(key=lambda f: (str(f.location), f.message))
    if store:
        store.seen_references = digests.references
        store.save()
        stat.save()
    return report


def _identity(tool: kustomize.Kustomize) -> str:
    """The Kustomize binary as the cache knows it: a new binary (another version) invalidates results,
    and asking it for its version would cost a process on every run."""
    try:
        st = os.stat(tool.argv[0])
    except OSError:
        return tool.argv[0]
    return f"{tool.argv[0]}\0{st.st_size}\0{st.st_mtime_ns}"
