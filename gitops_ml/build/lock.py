"""Locks: a model's requirements and the server's own, resolved by uv for the image's platform and
Python into a hashed lock (`gitops-ml lock` writes it into the model directory and names it in the
manifest); the same resolution, cached and never written, for a build of a model without a lock.

Never prints (progress goes through a callback); files are written atomically.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from gitops_ml.adapters import uv
from gitops_ml.atomic import write_atomic
from gitops_ml.build.plan import ImagePlan, Progress
from gitops_ml.build.requirements import Requirements, version_requirements
from gitops_ml.errors import ExternalToolError, Location, ValidationError
from gitops_ml.registry.versions import ModelVersion, resolve_model_version
from gitops_ml.repo.editing import SetValue, edit_text
from gitops_ml.repo.handle import Repository
from gitops_ml.types import ModelName
from gitops_ml.validate import locks
from gitops_ml.validate.specs import Specs

RUNTIME_INPUT = "gitops-ml-runtime.txt"  # the name `# via` annotations give the server's own requirements


@dataclass(frozen=True)
class LockResult:
    """What `gitops-ml lock` did for one model."""

    model: str
    path: str  # repository-relative
    packages: int
    changed: bool
    manifest_edited: bool


def target_of(python: str) -> uv.Target:
    return uv.Target(python, locks.PLATFORM)


def uv_cache(cache: Path) -> Path:
    """uv's download cache, one for every model and build (UV_CACHE_DIR wins, as uv's users expect)."""
    return Path(os.environ["UV_CACHE_DIR"]) if os.environ.get("UV_CACHE_DIR") else cache / "uv"


def resolve_lock_text(model: str, reqs: Requirements, python: str, cache: Path) -> str:
    """The lock's text: its header (inputs), the requirements file's index options, uv's hashed resolution."""
    runtime = locks.serving_requirements()
    source = posixpath.basename(reqs.path) if reqs.path else ""
    input_name = source if source.endswith(".txt") else f"{source or 'requirements'}.pip.txt"
    with tempfile.TemporaryDirectory(prefix="gitops-ml-lock-") as tmp:
        inputs = [RUNTIME_INPUT]
        Path(tmp, RUNTIME_INPUT).write_text("\n".join(runtime) + "\n", encoding="utf-8")
        if reqs.lines:
            Path(tmp, input_name).write_text("\n".join(reqs.lines) + "\n", encoding="utf-8")
            inputs.insert(0, input_name)
        try:
            body = uv.compile_lock(inputs, target_of(python), cwd=Path(tmp), cache=uv_cache(cache))
        except uv.UvFailed as exc:
            raise _resolution_error(model, reqs, python, exc.output) from exc
    options = [line for line in reqs.lines if line.startswith(locks.INDEX_OPTIONS)]
    header = locks.lock_header(model, source, python, locks.PLATFORM, reqs.lines, runtime)
    return header + "".join(f"{line}\n" for line in options) + body


def _resolution_error(model: str, reqs: Requirements, python: str, output: str) -> ExternalToolError:
    """uv's failure in the user's terms: located at the requirement it names, naming the index asked."""
    from packaging.requirements import InvalidRequirement, Requirement  # noqa: PLC0415

    index = os.environ.get("UV_INDEX_URL") or os.environ.get("PIP_INDEX_URL") or "https://pypi.org/simple"
    mentioned = [locks.canonical_name(m) for m in re.findall(r"(?:Because|require|of) ([A-Za-z0-9][A-Za-z0-9._-]*)", output)]
    location: Location | None = Location(reqs.path) if reqs.path else None
    for where, line in reqs.located():
        try:
            name = locks.canonical_name(Requirement(line).name)
        except InvalidRequirement:
            continue
        if name in mentioned:
            location = where
            break
    why = " ".join(line.strip(" ×╰─▶│") for line in output.strip().splitlines()[-6:] if line.strip())
    return ExternalToolError(
        f"model {model}: cannot resolve its requirements for CPython {python} on {locks.PLATFORM}: {why}",
        location=location,
        hint=f"check the names and versions on the package index ({index}); images install wheels only (no source builds); "
             "UV_INDEX_URL or PIP_INDEX_URL, or --index-url lines in the requirements file, choose the index",
    )


def lock_models(repository: Repository, specs: Specs, models: Sequence[ModelName], cache: Path, progress: Progress) -> list[LockResult]:
    """Resolve and write the lock of every named model (all when none), each written atomically; a model
    whose manifest names no lock gets `dependencies.lock: requirements.lock` (its formatting kept)."""
    names = list(models) or sorted(specs.models)
    checked: list[tuple[ModelVersion, Requirements]] = []
    findings: list[object] = []
    for name in names:
        version = resolve_model_version(repository, specs, name, None)
        try:
            checked.append((version, version_requirements(version)))
        except ValidationError as exc:
            findings.extend(exc.findings)
    if findings:
        raise ValidationError(findings, f"{len(findings)} problem(s) in the requirements")
    results = []
    for version, reqs in checked:
        entry = version.entry
        rel = posixpath.normpath(entry.manifest.lock or locks.DEFAULT_LOCK)
        path = f"{entry.dir}/{rel}"
        progress(f"{entry.spec.name}: resolving {len(reqs.lines)} requirement(s) and the server's own for CPython "
                 f"{entry.manifest.python} on {locks.PLATFORM}")
        text = resolve_lock_text(str(entry.spec.name), reqs, entry.manifest.python, cache)
        target = repository.root / path
        before = target.read_text(encoding="utf-8") if target.is_file() else None
        if before != text:
            write_atomic(target, text)
        edited = False
        if not entry.manifest.lock:
            manifest_path = repository.root / entry.dir / "manifest.yaml"
            old = manifest_path.read_text(encoding="utf-8")
            new = edit_text(old, [SetValue(("dependencies", "lock"), rel)], label=f"{entry.dir}/manifest.yaml")
            if new != old:
                write_atomic(manifest_path, new)
                edited = True
        parsed, _ = locks.parse_lock(path, text)
        results.append(LockResult(str(entry.spec.name), path, len(parsed.packages) if parsed else 0, before != text, edited))
    return results


def plan_lock(plan: ImagePlan, cache: Path, progress: Progress) -> locks.Lock:
    """The lock a build installs: the committed one (validate checked it is current), or, for a model
    without one, the same resolution cached by its inputs (with a warning: such a build is not repeatable)."""
    manifest = plan.version.entry.manifest
    files = plan.version.files()
    if manifest.lock:
        rel = posixpath.normpath(manifest.lock)
        lock, findings = locks.parse_lock(f"{plan.model_dir}/{rel}", files[rel].decode("utf-8"))
        if lock is None:
            raise ValidationError(findings)
        return lock
    reqs = version_requirements(plan.version)
    key = hashlib.sha256("\n".join(["lock v1", plan.python, locks.PLATFORM, os.environ.get("UV_INDEX_URL", ""),
                                    os.environ.get("PIP_INDEX_URL", ""), *reqs.lines, *locks.serving_requirements()]).encode()).hexdigest()[:24]
    cached = cache / "locks" / f"{key}.lock"
    progress(f"warning: no lock committed; the image installs a resolution of today (run `gitops-ml lock {plan.model}` and commit it)")
    if not cached.is_file():
        write_atomic(cached, resolve_lock_text(str(plan.model), reqs, plan.python, cache))
    lock, findings = locks.parse_lock(f"{plan.model_dir}/{locks.DEFAULT_LOCK} (not committed)", cached.read_text(encoding="utf-8"))
    if lock is None:
        raise ValidationError(findings)
    return lock
